//! End-to-end tests of datanets: the real node, the real `provenant` CLI, real files.
//!
//! Each refusal is checked twice where it matters: the CLI refuses before paying a fee, and
//! the chain itself refuses a submission that skips the CLI's check.

use std::{path::Path, time::Duration};

use anyhow::{ensure, Result};
use provenant_client::{runtime, subxt_signer::sr25519::dev};
use provenant_e2e::{create_datanet, free_balance, ok_json, refused, write, Node, Ports};
use serde_json::Value;

mod auto;
mod epoch;
mod validation;

const TIMEOUT: Duration = Duration::from_secs(90);
const MIB: usize = 1024 * 1024;

/// A small but genuine PNG header, distinct per `seed`.
fn png(seed: u8) -> Vec<u8> {
	let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
	bytes.extend_from_slice(&[0x1f, 0x15, 0xc4, 0x89, seed]);
	bytes
}

async fn contribution_count(node: &Node) -> Result<u64> {
	let client = node.client().await?;
	let at = client.at_current_block().await?;
	Ok(at
		.storage()
		.entry(runtime::storage().datanets().next_contribution_id())?
		.fetch(())
		.await?
		.decode()?)
}

#[tokio::test]
async fn image_datanet_takes_png_and_names_what_a_text_file_is() -> Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	let images = create_datanet(&node, dir.path(), "image", "Photos")?;
	let images = images.to_string();

	let photo = write(dir.path(), "photo.png", &png(1));
	let submitted =
		ok_json(&node, dir.path(), &["contribute", &images, &photo, "--from", "//Bob"])?;
	assert_eq!(submitted[0]["format"], "png");
	assert_eq!(submitted[0]["status"], "pending");

	let listed = ok_json(&node, dir.path(), &["contributions", "--mine", "--from", "//Bob"])?;
	assert_eq!(listed.as_array().unwrap().len(), 1);
	assert_eq!(listed[0]["status"], "pending");
	assert_eq!(listed[0]["hash"], submitted[0]["hash"]);

	// A text file renamed .png is still text, and the refusal says so.
	let client = node.client().await?;
	let bob = dev::bob().public_key().to_account_id();
	let bob_before = free_balance(&client, &bob).await?;
	let fake = write(dir.path(), "not-really.png", b"just some words, honestly");
	let error = refused(&node, dir.path(), &["contribute", &images, &fake, "--from", "//Bob"])?;
	assert!(error.contains("its bytes are txt"), "{error}");
	assert!(error.contains("Image data"), "{error}");
	assert_eq!(
		free_balance(&node.client().await?, &bob).await?,
		bob_before,
		"a local refusal costs nothing"
	);
	assert_eq!(contribution_count(&node).await?, 1);

	// JSON lines whose second line is broken are prose to the chain; the refusal names the line.
	let created = ok_json(
		&node,
		dir.path(),
		&[
			"datanet",
			"create",
			"--name",
			"Lines",
			"--kind",
			"text",
			"--formats",
			"jsonl",
			"--from",
			"//Alice",
		],
	)?;
	let lines = created["id"].to_string();
	let broken = write(dir.path(), "broken.jsonl", b"{\"text\": \"one\"}\n{\"text\": \"two\"\n");
	let error = refused(&node, dir.path(), &["contribute", &lines, &broken, "--from", "//Bob"])?;
	assert!(error.contains("its bytes are txt"), "{error}");
	assert!(error.contains("not jsonl: line 2 is not a JSON object"), "{error}");
	assert_eq!(contribution_count(&node).await?, 1);
	Ok(())
}

#[tokio::test]
async fn oversized_files_are_refused_by_the_cli_and_by_the_chain() -> Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	let texts = create_datanet(&node, dir.path(), "text", "Prose")?;

	let big = vec![b'a'; 6 * MIB];
	let big_path = write(dir.path(), "big.txt", &big);
	let error = refused(
		&node,
		dir.path(),
		&["contribute", &texts.to_string(), &big_path, "--from", "//Bob"],
	)?;
	assert!(error.contains("6291456 bytes") && error.contains("5242880"), "{error}");

	// Skipping the CLI's check: the runtime refuses it too, and nothing is stored.
	let client = node.client().await?;
	let call = runtime::transactions().datanets().submit(texts as u32, big);
	let failure = provenant_client::submit_and_finalize(&client, &call, &dev::bob())
		.await
		.expect_err("the runtime must refuse a 6 MiB file");
	assert!(format!("{failure:?}").contains("FileTooLarge"), "{failure:?}");
	assert_eq!(contribution_count(&node).await?, 0);
	Ok(())
}

#[tokio::test]
async fn the_twenty_first_file_and_a_duplicate_are_refused() -> Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	let texts = create_datanet(&node, dir.path(), "text", "Notes")?.to_string();

	let files: Vec<String> = (0..20)
		.map(|n| {
			write(dir.path(), &format!("note-{n}.txt"), format!("note number {n}\n").as_bytes())
		})
		.collect();
	let mut args = vec!["contribute", texts.as_str()];
	args.extend(files.iter().map(String::as_str));
	args.extend(["--from", "//Charlie"]);
	let submitted = ok_json(&node, dir.path(), &args)?;
	assert_eq!(submitted.as_array().unwrap().len(), 20);

	let extra = write(dir.path(), "note-20.txt", b"note number 20\n");
	let error = refused(&node, dir.path(), &["contribute", &texts, &extra, "--from", "//Charlie"])?;
	assert!(error.contains("20 files today"), "{error}");

	// Another contributor sending Charlie's exact bytes is refused as a duplicate.
	let error = refused(&node, dir.path(), &["contribute", &texts, &files[0], "--from", "//Dave"])?;
	assert!(error.contains("already in the datanet"), "{error}");
	assert_eq!(contribution_count(&node).await?, 20);
	Ok(())
}

#[tokio::test]
async fn content_survives_kill_9_and_verifies_by_hash() -> Result<()> {
	let base = tempfile::tempdir()?;
	let mut node = Node::start(&["--dev"], base.path().join("chain"), Ports::free())?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	let texts = create_datanet(&node, dir.path(), "text", "Lines")?.to_string();
	let original = b"{\"text\": \"a line of training data\"}\n{\"text\": \"another\"}\n".to_vec();
	let file = write(dir.path(), "data.jsonl", &original);
	let submitted = ok_json(&node, dir.path(), &["contribute", &texts, &file, "--from", "//Eve"])?;
	assert_eq!(submitted[0]["format"], "jsonl");
	let hash = submitted[0]["hash"].as_str().unwrap().to_string();

	node.kill_9();
	node.restart()?;
	node.wait_for_best(1, TIMEOUT).await?;

	let out_path = dir.path().join("fetched.jsonl");
	let fetched =
		ok_json(&node, dir.path(), &["content", "get", &hash, "-o", out_path.to_str().unwrap()])?;
	assert_eq!(fetched["verified"], true);
	assert_eq!(std::fs::read(&out_path)?, original);

	let missing = format!("0x{}", "00".repeat(32));
	let error = refused(&node, dir.path(), &["content", "get", &missing])?;
	assert!(error.contains("no stored content"), "{error}");
	Ok(())
}
