//! End-to-end: each validator runs one `validator auto` for a text, an image and an audio
//! datanet at once, with files arriving in all three together. Every commit is revealed, so no
//! one is slashed, even by a worker killed after its commits and started again in the reveal
//! window; every file gets the verdict its bytes deserve.

use super::*;
use provenant_client::subxt::utils::AccountId32;
use provenant_e2e::{cli_spawn, wait_for_verdicts, CliProcess};
use provenant_quality::samples::wav;

/// Blocks of the dev chain's commit window.
const COMMIT_PERIOD: u64 = 10;

fn bonded(node: &Node, dir: &Path, who: &str) -> Result<String> {
	let status = ok_json(node, dir, &["validator", "status", who])?;
	Ok(status["bonded"].as_str().unwrap_or_default().to_string())
}

/// Whether `who` has a commit on chain for each of `contributions`.
async fn committed_on_all(node: &Node, who: &AccountId32, contributions: &[u64]) -> Result<bool> {
	let at = node.client().await?.at_current_block().await?;
	for id in contributions {
		let commit =
			at.storage().try_fetch(runtime::storage().validation().commits(), (*id, *who)).await?;
		if commit.is_none() {
			return Ok(false);
		}
	}
	Ok(true)
}

fn ids(submitted: &Value) -> Vec<u64> {
	submitted.as_array().into_iter().flatten().filter_map(|c| c["contribution"].as_u64()).collect()
}

#[tokio::test]
async fn one_worker_judges_three_datanets_and_reveals_every_commit() -> Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	let dir = dir.path();
	let datanets = [
		create_datanet(&node, dir, "text", "Notes")?.to_string(),
		create_datanet(&node, dir, "image", "Pictures")?.to_string(),
		create_datanet(&node, dir, "audio", "Sounds")?.to_string(),
	];
	let validators = ["//Charlie", "//Dave"];
	for who in validators {
		let mut args = vec!["validator", "bond", "--amount", "3000", "--from", who];
		for datanet in &datanets {
			args.extend(["--datanet", datanet.as_str()]);
		}
		ok_json(&node, dir, &args)?;
	}
	let stakes_before: Vec<String> =
		validators.iter().map(|who| bonded(&node, dir, who)).collect::<Result<_>>()?;
	// One worker each, naming no datanet: it judges every datanet its validator serves.
	let spawn = |who: &str, log: &str| {
		cli_spawn(&node, dir, &["validator", "auto", "--from", who], dir.join(log))
	};
	let charlie = spawn(validators[0], "charlie.log")?;
	let mut dave = spawn(validators[1], "dave.log")?;

	// Files for all three datanets, sent at the same time by three contributors.
	let texts: Vec<String> = [
		"Rivers carve valleys over thousands of years, carrying sediment to the sea.",
		"A good loaf needs flour, water, salt, yeast and above all patience.",
		"The committee met on Tuesday and agreed to publish the minutes online.",
	]
	.iter()
	.enumerate()
	.map(|(index, text)| write(dir, &format!("note-{index}.txt"), text.as_bytes()))
	.collect();
	let pictures: Vec<String> = (0..2)
		.map(|kind| write(dir, &format!("picture-{kind}.png"), &super::epoch::picture(kind, 0)))
		.collect();
	let whole = wav(8000);
	let sounds = vec![
		write(dir, "tone.wav", &whole),
		write(dir, "longer-tone.wav", &wav(9000)),
		// Half of the declared samples, cut on a sample boundary: every frame left decodes.
		write(dir, "cut.wav", &whole[..44 + 8000]),
	];
	let batches = [
		(&datanets[0], texts, "//Bob"),
		(&datanets[1], pictures, "//Eve"),
		(&datanets[2], sounds, "//Ferdie"),
	];
	let submitted: Vec<Vec<u64>> = std::thread::scope(|scope| {
		let sends: Vec<_> = batches
			.iter()
			.map(|(datanet, files, who)| {
				let node = &node;
				scope.spawn(move || {
					let mut args = vec!["contribute", datanet.as_str()];
					args.extend(files.iter().map(String::as_str));
					args.extend(["--from", who]);
					ok_json(node, dir, &args).map(|submitted| ids(&submitted))
				})
			})
			.collect();
		sends
			.into_iter()
			.map(|send| send.join().expect("contribute thread"))
			.collect::<Result<Vec<_>>>()
	})?;
	let all: Vec<u64> = submitted.concat();
	assert_eq!(all.len(), 8, "{submitted:?}");

	// Dave's worker is stopped once its commits are final, and started again once the reveal
	// window is open: it reveals from the votes it saved.
	let dave_account = dev::dave().public_key().to_account_id();
	let deadline = std::time::Instant::now() + TIMEOUT;
	while !committed_on_all(&node, &dave_account, &all).await? {
		ensure!(std::time::Instant::now() < deadline, "Dave never committed:\n{}", dave.log());
		tokio::time::sleep(Duration::from_secs(1)).await;
	}
	let listed = ok_json(&node, dir, &["contributions"])?;
	let last_block = listed
		.as_array()
		.into_iter()
		.flatten()
		.filter_map(|c| c["block"].as_u64())
		.max()
		.expect("contributions have blocks");
	drop(dave);
	node.wait_for_best(last_block + COMMIT_PERIOD + 1, TIMEOUT).await?;
	dave = spawn(validators[1], "dave-again.log")?;

	let workers: [CliProcess; 2] = [charlie, dave];
	let mut verdicts = std::collections::HashMap::new();
	for (datanet, files) in datanets.iter().zip(&submitted) {
		verdicts.extend(
			wait_for_verdicts(&node, dir, datanet, files.len(), &workers, TIMEOUT * 2).await?,
		);
	}
	let cut = *submitted[2].last().expect("three sounds");
	for id in &all {
		let expected = if *id == cut {
			("rejected".to_string(), Some("corrupt".to_string()))
		} else {
			("accepted".to_string(), None)
		};
		assert_eq!(verdicts[id], expected, "contribution #{id}");
	}
	// A commit left unrevealed costs 5% of the stake; a vote against the majority, 1%.
	for (who, before) in validators.iter().zip(&stakes_before) {
		assert_eq!(&bonded(&node, dir, who)?, before, "{who} was slashed");
	}
	ensure!(
		workers[1].log().contains("revealed"),
		"the restarted worker revealed nothing:\n{}",
		workers[1].log()
	);
	Ok(())
}
