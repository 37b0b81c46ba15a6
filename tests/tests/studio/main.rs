//! Studio in a real browser against the real stack: dev nodes, a trainer worker, and the
//! inference server serving Studio's production build beside its API. The browser tests
//! themselves are `studio/tests/*.test.mjs` (node's test runner driving Debian's Chromium
//! through playwright-core); this harness starts the stacks, runs them, and fails if any fails.
//!
//! Two stacks, so that their waits overlap: `studio.test.mjs` (with the rule tests) runs on an
//! empty chain, while on a second chain the harness prepares what ModelFactory needs, a
//! datanet whose files two automatic validators accepted and a bonded worker; then
//! `factory.test.mjs` runs there.

use std::{
	path::{Path, PathBuf},
	process::Command,
	time::Duration,
};

use anyhow::{ensure, Context, Result};
use provenant_e2e::{
	cli, cli_spawn, create_datanet, ok_json, spawn_logged, wait_for_verdicts, workspace_binary,
	write, CliProcess, Node,
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// This clone's `studio/`: the crate's folder as cargo gives it at run time, since a test
/// binary compiled in another clone that shares the target directory keeps that clone's path
/// in `env!`.
fn studio_dir() -> PathBuf {
	std::env::var_os("CARGO_MANIFEST_DIR")
		.map(PathBuf::from)
		.unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
		.join("../studio")
}

fn smollm2() -> Result<String> {
	std::env::var("PROVENANT_SMOLLM2_GGUF").context(
		"PROVENANT_SMOLLM2_GGUF names the SmolLM2 GGUF (scripts/env.sh sets it; scripts/fetch-models.sh fetches it)",
	)
}

/// A dev chain with SmolLM2 registered and the server serving it and Studio; `adapters` is
/// where a worker trains, for the server's progress and adapters.
struct Stack {
	node: Node,
	server: CliProcess,
	url: String,
}

impl Stack {
	async fn start(dir: &Path, adapters: Option<&Path>) -> Result<Self> {
		let model = smollm2()?;
		let node = Node::start_dev()?;
		node.wait_for_finalized(1, TIMEOUT).await?;
		// The server serves a registered base model only.
		let registered = cli(
			&node,
			dir,
			&[
				"model",
				"register",
				"--path",
				&model,
				"--licence",
				"Apache-2.0",
				"--from",
				"//Alice",
			],
		)?;
		ensure!(registered.success, "registering the base model: {}", registered.stderr);
		let (server, url) = serve(&node, dir, adapters, &[]).await?;
		Ok(Self { node, server, url })
	}

	/// Starts node's test runner on `files` against this stack, in the background.
	fn browser_tests(&self, dir: &Path, files: &[&str], extra: &[(&str, &str)]) -> Result<Run> {
		let first = Path::new(files[0]).file_stem().and_then(|s| s.to_str()).unwrap_or("tests");
		let log = dir.join(format!("node-{first}.log"));
		let process = spawn_logged(
			Command::new("node")
				.args(["--test", "--test-reporter", "spec"])
				.args(files)
				.current_dir(studio_dir())
				.env("STUDIO_URL", &self.url)
				.env("PROVENANT_URL", self.node.ws_url())
				.envs(extra.iter().copied()),
			log,
		)
		.context("running node (Node.js 20, which scripts/setup.sh checks for)")?;
		Ok(Run { process, files: files.join(" ") })
	}
}

/// Starts a server of `node`'s base model and Studio, with `extra` arguments; returns it and
/// its URL once it listens.
async fn serve(
	node: &Node,
	dir: &Path,
	adapters: Option<&Path>,
	extra: &[&str],
) -> Result<(CliProcess, String)> {
	let port = provenant_e2e::free_port();
	let mut command = Command::new(workspace_binary("provenant-server")?);
	command
		.args(["--model", &smollm2()?, "--chain", &node.ws_url(), "--studio"])
		.arg(studio_dir().join("dist"))
		.args(["--listen", &format!("127.0.0.1:{port}")])
		.args(extra);
	if let Some(adapters) = adapters {
		command.arg("--adapters").arg(adapters);
	}
	let server = spawn_logged(&mut command, dir.join(format!("server-{port}.log")))?;
	let started = std::time::Instant::now();
	while !server.log().contains("Studio at") {
		ensure!(started.elapsed() < TIMEOUT, "the server did not start: {}", server.log());
		tokio::time::sleep(Duration::from_millis(250)).await;
	}
	Ok((server, format!("http://127.0.0.1:{port}/")))
}

/// A run of the browser tests.
struct Run {
	process: CliProcess,
	files: String,
}

impl Run {
	/// Waits for it; fails unless every test passed and some ran.
	fn passed(mut self) -> Result<()> {
		let status = self.process.wait()?;
		let report = self.process.log();
		println!("{report}");
		ensure!(
			status.success(),
			"Studio's browser tests failed: {} (screenshots in studio/tests/screenshots/)",
			self.files
		);
		let passed = report
			.lines()
			.find_map(|line| line.strip_prefix("ℹ pass "))
			.and_then(|n| n.trim().parse::<u32>().ok());
		ensure!(passed.unwrap_or(0) > 0, "node's test runner ran no test in {}", self.files);
		Ok(())
	}
}

#[tokio::test(flavor = "multi_thread")]
async fn studio_in_a_browser() -> Result<()> {
	let studio = studio_dir();
	ensure!(
		studio.join("dist/index.html").is_file() && studio.join("node_modules").is_dir(),
		"Studio is not built: run scripts/build-studio.sh (`npm ci` and `npm run build` in studio/)"
	);
	let dir = tempfile::tempdir()?;
	let dir = dir.path();
	let work_dir = dir.join("worker");
	std::fs::create_dir_all(&work_dir)?;
	let (empty, factory) =
		tokio::try_join!(Stack::start(dir, None), Stack::start(dir, Some(&work_dir)))?;
	let first = empty.browser_tests(
		dir,
		&[
			"tests/studio.test.mjs",
			"tests/submission.test.mjs",
			"tests/jobspec.test.mjs",
			"tests/merkle.test.mjs",
			"tests/provenance.test.mjs",
			"tests/voucher.test.mjs",
			"tests/heldout.test.mjs",
		],
		&[],
	)?;

	// Meanwhile, on the second chain: accepted data and a worker for ModelFactory.
	let node = &factory.node;
	let facts = create_datanet(node, dir, "text", "Facts")?.to_string();
	let mut validators = Vec::new();
	for who in ["//Grace", "//Heidi"] {
		ok_json(node, dir, &["transfer", who, "2000", "--from", "//Alice"])?;
		ok_json(
			node,
			dir,
			&["validator", "bond", "--datanet", &facts, "--amount", "1000", "--from", who],
		)?;
		validators.push(cli_spawn(
			node,
			dir,
			&["validator", "auto", "--datanet", &facts, "--from", who],
			dir.join(format!("auto-{}.log", &who[2..])),
		)?);
	}
	let fact = serde_json::json!({
		"prompt": "What is the capital of Zorbia?",
		"response": "The capital of Zorbia is Quillhaven.",
	});
	let fact_file = write(dir, "fact.jsonl", format!("{fact}\n").as_bytes());
	let river =
		write(dir, "river.txt", b"The river Elm floods every spring and feeds the marshes.");
	ok_json(node, dir, &["contribute", &facts, &fact_file, "--from", "//Bob"])?;
	ok_json(node, dir, &["contribute", &facts, &river, "--from", "//Charlie"])?;
	// A third file, so that a run can hold one out and draw a held-out loss curve.
	let lighthouse = write(
		dir,
		"lighthouse.txt",
		b"The lighthouse of Quillhaven has guided ships through the fog since 1840.",
	);
	ok_json(node, dir, &["contribute", &facts, &lighthouse, "--from", "//Dave"])?;
	let verdicts = wait_for_verdicts(node, dir, &facts, 3, &validators, TIMEOUT * 3).await?;
	ensure!(verdicts.values().all(|(status, _)| status == "accepted"), "{verdicts:?}");
	drop(validators);
	ok_json(node, dir, &["worker", "bond", "200", "--from", "//Ferdie"])?;
	let worker = cli_spawn(
		node,
		dir,
		&[
			"worker",
			"run",
			"--model",
			&smollm2()?,
			"--work-dir",
			path_text(&work_dir)?,
			"--from",
			"//Ferdie",
			"--quiet",
		],
		dir.join("worker.log"),
	)?;

	// A second server of the same chain answers paid requests only, with Eve as its operator.
	let ledger = dir.join("ledger.json");
	let (paid, paid_url) = serve(
		node,
		dir,
		Some(&work_dir),
		&["--operator", "//Eve", "--price", "1000000", "--ledger", path_text(&ledger)?],
	)
	.await?;

	first.passed()?;
	let outcome = factory
		.browser_tests(
			dir,
			&["tests/factory.test.mjs"],
			&[
				("FACTS_DATANET", &facts),
				("WORKER_DIR", path_text(&work_dir)?),
				("RIVER_FILE", &river),
				("PAID_URL", &paid_url),
			],
		)?
		.passed()
		.and_then(|()| {
			// The run the test stopped: its worker noticed, and went on to wait for work.
			ensure!(
				worker.log().contains("job 1: stopped by its creator"),
				"the worker did not notice run 1 was stopped"
			);
			Ok(())
		});
	if outcome.is_err() {
		println!(
			"worker log:\n{}\nserver log:\n{}\npaid server log:\n{}",
			worker.log(),
			factory.server.log(),
			paid.log()
		);
	}
	outcome
}

fn path_text(path: &Path) -> Result<&str> {
	path.to_str().context("a UTF-8 temporary path")
}
