//! Studio in a real browser against the real stack: a dev node, and the inference server
//! serving Studio's production build beside its API. The browser tests themselves are
//! `studio/tests/*.test.mjs` (node's test runner driving Debian's Chromium through
//! playwright-core); this harness starts the stack, runs them, and fails if any fails.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{ensure, Context, Result};
use provenant_e2e::{cli, spawn_logged, workspace_binary, Node};

const TIMEOUT: Duration = Duration::from_secs(120);

fn studio_dir() -> PathBuf {
	PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../studio")
}

#[tokio::test(flavor = "multi_thread")]
async fn studio_in_a_browser() -> Result<()> {
	let studio = studio_dir();
	let dist = studio.join("dist");
	ensure!(
		dist.join("index.html").is_file() && studio.join("node_modules").is_dir(),
		"Studio is not built: run scripts/setup.sh (it runs `npm ci` and `npm run build` in studio/)"
	);
	let model = std::env::var("PROVENANT_SMOLLM2_GGUF").context(
		"PROVENANT_SMOLLM2_GGUF names the SmolLM2 GGUF (scripts/env.sh sets it; scripts/fetch-models.sh fetches it)",
	)?;
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	// The server serves a registered base model only.
	let registered = cli(
		&node,
		dir.path(),
		&["model", "register", "--path", &model, "--licence", "Apache-2.0", "--from", "//Alice"],
	)?;
	ensure!(registered.success, "registering the base model: {}", registered.stderr);

	let port = provenant_e2e::free_port();
	let server = spawn_logged(
		Command::new(workspace_binary("provenant-server")?)
			.args(["--model", &model, "--chain", &node.ws_url(), "--studio"])
			.arg(&dist)
			.arg("--listen")
			.arg(format!("127.0.0.1:{port}")),
		dir.path().join("server.log"),
	)?;
	let started = std::time::Instant::now();
	while !server.log().contains("Studio on") {
		ensure!(started.elapsed() < TIMEOUT, "the server did not start: {}", server.log());
		tokio::time::sleep(Duration::from_millis(250)).await;
	}

	let output = Command::new("node")
		.args(["--test", "--test-reporter", "spec", "tests/"])
		.current_dir(&studio)
		.env("STUDIO_URL", format!("http://127.0.0.1:{port}/"))
		.env("PROVENANT_URL", node.ws_url())
		.output()
		.context("running node (Node.js 20, installed by scripts/setup.sh)")?;
	let report = String::from_utf8_lossy(&output.stdout);
	println!("{report}{}", String::from_utf8_lossy(&output.stderr));
	ensure!(
		output.status.success(),
		"Studio's browser tests failed (screenshots in studio/tests/screenshots/)"
	);
	let passed = report
		.lines()
		.find_map(|line| line.strip_prefix("ℹ pass "))
		.and_then(|n| n.trim().parse::<u32>().ok());
	ensure!(passed.unwrap_or(0) > 0, "node's test runner ran no test");
	Ok(())
}
