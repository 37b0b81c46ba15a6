//! End-to-end: a whole epoch on the real node. Three validators run `validator auto`;
//! contributors submit good images, a corrupt one and a near-duplicate; the verdicts carry the
//! expected reasons; after the epoch the leaderboard and the claimable rewards match a hand
//! calculation, and `claim` pays into the wallet.

use super::*;
use image::{ImageFormat, Rgb, RgbImage};
use provenant_client::{subxt::rpcs::rpc_params, UNIT};
use provenant_e2e::{cli_spawn, wait_for_verdicts};

/// The dev chain's rules (runtime `development_params`): 40-block epochs, 100 PRV minted per
/// active datanet, 70/20/10.
const EPOCH_BLOCKS: u64 = 40;
const ISSUANCE: u128 = 100 * UNIT;
/// Blocks from submission to the last close: inclusion and finality, 10 to commit, 10 to
/// reveal, then the close and its finality, with room to spare.
const BLOCKS_TO_VERDICT: u64 = 30;

/// A 64×64 picture: `kind` picks the pattern, `brighten` shifts every pixel.
pub(super) fn picture(kind: u32, brighten: u8) -> Vec<u8> {
	let image = RgbImage::from_fn(64, 64, |x, y| {
		let on = match kind {
			0 => ((x + y) / 8) % 2 == 0,
			1 => (x / 16) % 2 == 0,
			2 => (y / 8) % 2 == 0,
			3 => (x * x + y * y) < 1600,
			4 => (x / 8 + y / 8) % 3 == 0,
			5 => x < y,
			6 => ((x + 64 - y) / 8) % 2 == 0,
			_ => (x / 16 + y / 16) % 2 == 0,
		};
		let value = if on { 200 } else { 30 };
		Rgb([value + brighten, (value / 2) + brighten, 255 - value])
	});
	let mut bytes = std::io::Cursor::new(Vec::new());
	image.write_to(&mut bytes, ImageFormat::Png).unwrap();
	bytes.into_inner()
}

/// The lower bound of the 95% Wilson interval, in parts per billion.
fn wilson_ppb(accepted: f64, rejected: f64) -> f64 {
	let z = 1.959963984540054_f64;
	let n = accepted + rejected;
	let p = accepted / n;
	let bound = (p + z * z / (2.0 * n) - z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt())
		/ (1.0 + z * z / n);
	(bound * 1e9).floor()
}

async fn epoch(node: &Node) -> Result<Value> {
	Ok(node.rpc().await?.request("rewards_epoch", rpc_params![]).await?)
}

fn amount(value: &Value) -> u128 {
	value.as_str().expect("amounts are strings").parse().expect("an amount")
}

#[tokio::test]
async fn a_whole_epoch_is_judged_automatically_ranked_and_paid() -> Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	let dir = dir.path();
	let photos = create_datanet(&node, dir, "image", "Patterns")?.to_string();

	let validators = ["//Charlie", "//Dave", "//Eve"];
	std::thread::scope(|scope| {
		let bonds: Vec<_> = validators
			.iter()
			.map(|who| {
				let (node, photos) = (&node, &photos);
				scope.spawn(move || {
					ok_json(
						node,
						dir,
						&[
							"validator",
							"bond",
							"--datanet",
							photos,
							"--amount",
							"1000",
							"--from",
							who,
						],
					)
				})
			})
			.collect();
		bonds.into_iter().try_for_each(|bond| bond.join().expect("bond thread").map(drop))
	})?;
	let workers = validators
		.iter()
		.enumerate()
		.map(|(index, who)| {
			let log = dir.join(format!("auto-{index}.log"));
			cli_spawn(&node, dir, &["validator", "auto", "--datanet", &photos, "--from", who], log)
		})
		.collect::<Result<Vec<_>>>()?;

	// Every verdict must fall in one epoch for the hand calculation: start at an epoch's
	// beginning if the current one has too little left.
	let clock = epoch(&node).await?;
	let ends_at = clock["startedAt"].as_u64().unwrap() + clock["length"].as_u64().unwrap();
	assert_eq!(clock["length"].as_u64(), Some(EPOCH_BLOCKS));
	if node.best_number().await? + BLOCKS_TO_VERDICT >= ends_at {
		node.wait_for_best(ends_at + 1, TIMEOUT * 3).await?;
	}
	let clock = epoch(&node).await?;
	let epoch_of_verdicts = clock["epoch"].as_u64().unwrap();
	let verdicts_due_by = clock["startedAt"].as_u64().unwrap() + EPOCH_BLOCKS;

	// Ferdie: three good pictures. Bob: four good ones, a truncated one, and Ferdie's first
	// picture brightened: more accepted than Ferdie, but a lower acceptance rate.
	let ferdie_pictures: Vec<Vec<u8>> = (0..3).map(|kind| picture(kind, 0)).collect();
	let bob_pictures: Vec<Vec<u8>> = (3..7).map(|kind| picture(kind, 0)).collect();
	assert_fixtures_distinct(&ferdie_pictures, &bob_pictures);
	let mut truncated = picture(7, 0);
	truncated.truncate(truncated.len() / 2);
	let near_copy = picture(0, 20);

	let ferdie_files: Vec<String> = ferdie_pictures
		.iter()
		.enumerate()
		.map(|(index, bytes)| write(dir, &format!("ferdie-{index}.png"), bytes))
		.collect();
	let mut bob_files: Vec<String> = bob_pictures
		.iter()
		.enumerate()
		.map(|(index, bytes)| write(dir, &format!("bob-{index}.png"), bytes))
		.collect();
	bob_files.push(write(dir, "bob-truncated.png", &truncated));
	bob_files.push(write(dir, "bob-copy.png", &near_copy));

	let mut args = vec!["contribute", photos.as_str()];
	args.extend(ferdie_files.iter().map(String::as_str));
	args.extend(["--from", "//Ferdie"]);
	let ferdie_ids = ids(&ok_json(&node, dir, &args)?);
	let mut args = vec!["contribute", photos.as_str()];
	args.extend(bob_files.iter().map(String::as_str));
	args.extend(["--from", "//Bob"]);
	let bob_ids = ids(&ok_json(&node, dir, &args)?);
	assert!(ferdie_ids.iter().max() < bob_ids.iter().min(), "Ferdie's pictures come first");

	// The workers commit, reveal and close by themselves.
	let verdicts = wait_for_verdicts(
		&node,
		dir,
		&photos,
		ferdie_ids.len() + bob_ids.len(),
		&workers,
		TIMEOUT * 3,
	)
	.await?;
	for id in ferdie_ids.iter().chain(&bob_ids[..4]) {
		assert_eq!(verdicts[id], ("accepted".to_string(), None), "#{id}");
	}
	assert_eq!(verdicts[&bob_ids[4]], ("rejected".to_string(), Some("corrupt".to_string())));
	assert_eq!(verdicts[&bob_ids[5]], ("rejected".to_string(), Some("near-duplicate".to_string())));
	for worker in &workers {
		let log = worker.log();
		assert!(log.contains("near-duplicate of #"), "a worker saw the copy:\n{log}");
		assert!(log.contains("the image is truncated"), "a worker saw the damage:\n{log}");
	}
	// Every validator agreed with every verdict: nobody is slashed.
	for who in validators {
		let status = ok_json(&node, dir, &["validator", "status", who])?;
		assert_eq!(amount(&status["bonded"]), 1000 * UNIT, "{who}");
	}
	let client = node.client().await?;
	let at = client.at_current_block().await?;
	for id in ferdie_ids.iter().chain(&bob_ids) {
		let verdict = at
			.storage()
			.try_fetch(runtime::storage().validation().verdicts(), (*id,))
			.await?
			.expect("a verdict")
			.decode()?;
		assert!(
			(verdict.decided_at as u64) < verdicts_due_by,
			"#{id} was decided after epoch {epoch_of_verdicts}"
		);
	}

	// After the epoch: settled in the first block of the next one.
	let deadline = std::time::Instant::now() + TIMEOUT * 2;
	while epoch(&node).await?["unsettled"].as_u64().unwrap() <= epoch_of_verdicts {
		ensure!(
			std::time::Instant::now() < deadline,
			"epoch {epoch_of_verdicts} was never paid out"
		);
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
	node.wait_for_finalized(node.best_number().await?, TIMEOUT).await?;

	// The leaderboard: rate beats volume. Ferdie (3 of 3) ranks above Bob (4 of 6).
	let board = ok_json(&node, dir, &["leaderboard", &photos])?;
	let rows = board["rows"].as_array().expect("rows");
	let ferdie = dev::ferdie().public_key().to_account_id().to_string();
	let bob = dev::bob().public_key().to_account_id().to_string();
	assert_eq!(
		(rows[0]["account"].as_str(), rows[0]["rank"].as_u64()),
		(Some(ferdie.as_str()), Some(1))
	);
	assert_eq!(
		(rows[1]["account"].as_str(), rows[1]["rank"].as_u64()),
		(Some(bob.as_str()), Some(2))
	);
	assert_eq!((rows[0]["accepted"].as_u64(), rows[1]["accepted"].as_u64()), (Some(3), Some(4)));
	let ferdie_ppb = wilson_ppb(3.0, 0.0);
	assert!((rows[0]["scorePpb"].as_f64().unwrap() - ferdie_ppb).abs() <= 2.0, "{}", rows[0]);
	// Pages of one: the first says where the next starts, and the next continues the ranks.
	let first = ok_json(&node, dir, &["leaderboard", &photos, "--limit", "1"])?;
	assert_eq!(first["next"].as_str(), Some(ferdie.as_str()));
	let second =
		ok_json(&node, dir, &["leaderboard", &photos, "--limit", "1", "--after", &ferdie])?;
	assert_eq!(
		(second["rows"][0]["account"].as_str(), second["rows"][0]["rank"].as_u64()),
		(Some(bob.as_str()), Some(2))
	);
	let error = refused(&node, dir, &["leaderboard", &photos, "--after", "//Eve"])?;
	assert!(error.contains("has no standing in datanet"), "{error}");
	// Bob's two rejections have decayed by one epoch's share of the 7-epoch half-life.
	let decayed = 2.0 * 0.5_f64.powf(1.0 / 7.0);
	assert!((rows[1]["rejected"].as_f64().unwrap() - decayed).abs() < 1e-6, "{}", rows[1]);

	// The hand calculation, with the scores as they stood at the end of the epoch.
	let bob_ppb = wilson_ppb(4.0, 2.0);
	let contributors = ISSUANCE * 70 / 100;
	let total = 3.0 * ferdie_ppb + 4.0 * bob_ppb;
	let expect_ferdie = contributors as f64 * 3.0 * ferdie_ppb / total;
	let expect_bob = contributors as f64 * 4.0 * bob_ppb / total;
	let rewards = |who: &str| ok_json(&node, dir, &["rewards", who]);
	let ferdie_claimable = amount(&rewards("//Ferdie")?["claimable"]);
	let bob_claimable = amount(&rewards("//Bob")?["claimable"]);
	for (got, expected) in [(ferdie_claimable, expect_ferdie), (bob_claimable, expect_bob)] {
		assert!((got as f64 - expected).abs() / expected < 1e-6, "{got} vs {expected}");
	}
	assert!(ferdie_claimable + bob_claimable <= contributors);
	assert!(
		contributors - (ferdie_claimable + bob_claimable) < 10,
		"at most rounding dust is kept"
	);
	assert_eq!(amount(&rows[0]["earned"]), ferdie_claimable);
	// Equal stakes that agreed with all nine verdicts share the validators' 20% equally; the
	// owner (Alice) gets 10%.
	for who in validators {
		assert_eq!(amount(&rewards(who)?["claimable"]), ISSUANCE * 20 / 100 / 3, "{who}");
	}
	assert_eq!(amount(&rewards("//Alice")?["claimable"]), ISSUANCE * 10 / 100);
	// Each credit is kept under what earned it.
	let by_source = |who: &str| -> Result<Vec<u128>> {
		let sources = ["contributions", "validation", "ownership", "training", "inference"];
		let standing = rewards(who)?;
		Ok(sources.iter().map(|source| amount(&standing["bySource"][source])).collect())
	};
	assert_eq!(by_source("//Ferdie")?, [ferdie_claimable, 0, 0, 0, 0]);
	assert_eq!(by_source(validators[0])?, [0, ISSUANCE * 20 / 100 / 3, 0, 0, 0]);
	assert_eq!(by_source("//Alice")?, [0, 0, ISSUANCE * 10 / 100, 0, 0]);

	// `claim` moves the reward into Ferdie's wallet, less the fee, once.
	let before = free_balance(&client, &dev::ferdie().public_key().to_account_id()).await?;
	let claimed = ok_json(&node, dir, &["claim", "--from", "//Ferdie"])?;
	assert_eq!(amount(&claimed["claimed"]), ferdie_claimable);
	// The client's view of the finalized chain may trail the CLI's by a block.
	let mut after = before;
	for _ in 0..20 {
		after = free_balance(&client, &dev::ferdie().public_key().to_account_id()).await?;
		if after != before {
			break;
		}
		tokio::time::sleep(Duration::from_secs(1)).await;
	}
	let fee = before + ferdie_claimable - after;
	assert!(fee < UNIT / 10, "the claim cost {fee} plancks in fees");
	assert_eq!(amount(&rewards("//Ferdie")?["claimable"]), 0);
	let error = refused(&node, dir, &["claim", "--from", "//Ferdie"])?;
	assert!(error.contains("NothingToClaim"), "{error}");
	drop(workers);
	Ok(())
}

fn ids(submitted: &Value) -> Vec<u64> {
	submitted
		.as_array()
		.expect("a list")
		.iter()
		.map(|c| c["contribution"].as_u64().expect("id"))
		.collect()
}

/// The fixtures must be what the test says: every good picture distinct from the others by
/// the workers' own measure.
fn assert_fixtures_distinct(ferdie: &[Vec<u8>], bob: &[Vec<u8>]) {
	use provenant_quality::{inspect, Fingerprint, IMAGE_HAMMING_THRESHOLD};
	let hashes: Vec<u64> = ferdie
		.iter()
		.chain(bob)
		.map(|bytes| match inspect(pallet_datanets::Format::Png, bytes) {
			Ok(Fingerprint::Image(hash)) => hash,
			other => panic!("a fixture does not decode: {other:?}"),
		})
		.collect();
	for (i, a) in hashes.iter().enumerate() {
		for b in &hashes[i + 1..] {
			assert!((a ^ b).count_ones() > IMAGE_HAMMING_THRESHOLD, "two fixtures look alike");
		}
	}
}
