//! End-to-end: validators bond, judge contributions by hand with commit-reveal through the
//! CLI, and the verdicts, reasons and slashes land on the real chain.

use super::*;

/// Each validator bonds this much, in PRV.
const BOND_PRV: u128 = 1_000;

fn validator_status(node: &Node, dir: &Path, who: &str) -> Result<Value> {
	ok_json(node, dir, &["validator", "status", who])
}

#[tokio::test]
async fn validators_vote_by_hand_and_verdicts_carry_reasons_and_slashes() -> Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	let dir = dir.path();
	let texts = create_datanet(&node, dir, "text", "Essays")?.to_string();

	let bond = BOND_PRV.to_string();
	for who in ["//Charlie", "//Dave", "//Eve", "//Bob"] {
		ok_json(
			&node,
			dir,
			&["validator", "bond", "--datanet", &texts, "--amount", &bond, "--from", who],
		)?;
	}
	let eve = validator_status(&node, dir, "//Eve")?;
	assert_eq!(eve["canVote"], true);
	assert_eq!(eve["bonded"], (BOND_PRV * provenant_client::UNIT).to_string());
	// Below the per-datanet minimum (100 PRV) nothing is bonded.
	let error = refused(
		&node,
		dir,
		&["validator", "bond", "--datanet", &texts, "--amount", "5", "--from", "//Ferdie"],
	)?;
	assert!(error.contains("BelowMinimumStake"), "{error}");

	let good = write(dir, "good.txt", b"A clear, well-written paragraph about river ecology.");
	let bad = write(dir, "bad.txt", b"asdf qwer zxcv");
	let submitted = ok_json(&node, dir, &["contribute", &texts, &good, &bad, "--from", "//Bob"])?;
	let good_id = submitted[0]["contribution"].as_u64().expect("id").to_string();
	let bad_id = submitted[1]["contribution"].as_u64().expect("id").to_string();

	// Six votes at once: each commits, waits for the reveal window, and reveals. Bob also
	// tries to judge his own file.
	let votes: Vec<Vec<&str>> = vec![
		vec!["vote", &good_id, "accept", "--from", "//Charlie"],
		vec!["vote", &good_id, "accept", "--from", "//Dave"],
		vec!["vote", &good_id, "reject", "--reason", "low-quality", "--from", "//Eve"],
		vec!["vote", &bad_id, "reject", "--reason", "corrupt", "--from", "//Charlie"],
		vec!["vote", &bad_id, "reject", "--reason", "corrupt", "--from", "//Dave"],
		vec!["vote", &bad_id, "reject", "--reason", "corrupt", "--from", "//Eve"],
	];
	let (outcomes, own_vote) = std::thread::scope(|scope| {
		let handles: Vec<_> =
			votes.iter().map(|args| scope.spawn(|| ok_json(&node, dir, args))).collect();
		let own = refused(&node, dir, &["vote", &good_id, "accept", "--from", "//Bob"]);
		(handles.into_iter().map(|h| h.join().expect("vote thread")).collect::<Vec<_>>(), own)
	});
	let own_vote = own_vote?;
	assert!(own_vote.contains("OwnContribution"), "{own_vote}");
	let mut closes_after = 0;
	for outcome in outcomes {
		closes_after = closes_after.max(outcome?["closesAfter"].as_u64().expect("closesAfter"));
	}

	// The windows are over for a second vote, and too early to close is refused.
	let error = refused(
		&node,
		dir,
		&["vote", &good_id, "reject", "--reason", "other", "--from", "//Charlie"],
	)?;
	assert!(error.contains("CommitWindowClosed"), "{error}");
	if node.best_number().await? <= closes_after {
		let error = refused(&node, dir, &["close", &good_id, "--from", "//Alice"])?;
		assert!(error.contains("PollStillOpen"), "{error}");
	}
	node.wait_for_best(closes_after + 1, TIMEOUT).await?;

	// 2/3 of the stake accepted: a supermajority, so Eve's dissent costs her 1% of her bond.
	let closed = ok_json(&node, dir, &["close", &good_id, "--from", "//Alice"])?;
	assert_eq!(closed["status"], "accepted");
	let one_percent = BOND_PRV * provenant_client::UNIT / 100;
	assert_eq!(closed["slashed"], one_percent.to_string());
	let closed = ok_json(&node, dir, &["close", &bad_id, "--from", "//Alice"])?;
	assert_eq!(
		(closed["status"].as_str(), closed["reason"].as_str()),
		(Some("rejected"), Some("corrupt"))
	);
	assert_eq!(closed["slashed"], "0");

	let eve = validator_status(&node, dir, "//Eve")?;
	assert_eq!(eve["bonded"], (BOND_PRV * provenant_client::UNIT - one_percent).to_string());
	let charlie = validator_status(&node, dir, "//Charlie")?;
	assert_eq!(charlie["bonded"], (BOND_PRV * provenant_client::UNIT).to_string());

	// The contributor sees each verdict and the reason.
	let listed = ok_json(&node, dir, &["contributions", "--mine", "--from", "//Bob"])?;
	let listed = listed.as_array().expect("a list");
	assert_eq!(listed.len(), 2);
	assert_eq!(
		(listed[0]["status"].as_str(), listed[0]["reason"].as_str()),
		(Some("accepted"), None)
	);
	assert_eq!(
		(listed[1]["status"].as_str(), listed[1]["reason"].as_str()),
		(Some("rejected"), Some("corrupt"))
	);
	Ok(())
}
