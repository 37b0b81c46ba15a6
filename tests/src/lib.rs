//! # Provenant end-to-end harness
//!
//! Starts real `provenant-node` processes on free loopback ports, each in its own base path,
//! and talks to them over JSON-RPC the way a wallet does. Nodes are killed with SIGKILL when
//! dropped, so a failing test never leaves a node behind.
//!
//! The node binary is the release build next to the test executable
//! (`$CARGO_TARGET_DIR/release/provenant-node`), or `PROVENANT_NODE_BIN` when set.

use std::{
	fs::File,
	io::{Read, Seek, SeekFrom},
	net::TcpListener,
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use provenant_client::{
	subxt::rpcs::{rpc_params, RpcClient},
	Client, ProvenantConfig,
};

/// How long a node may take to open its RPC port after it starts.
const RPC_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The release `provenant-node` binary the tests drive.
pub fn node_binary() -> Result<PathBuf> {
	if let Some(path) = std::env::var_os("PROVENANT_NODE_BIN") {
		return Ok(path.into());
	}
	// Test executables live in `<target>/release/deps/`; the node binary in `<target>/release/`.
	let exe = std::env::current_exe()?;
	let release_dir = exe
		.parent()
		.and_then(Path::parent)
		.ok_or_else(|| anyhow!("unexpected test executable path {}", exe.display()))?;
	let bin = release_dir.join("provenant-node");
	if !bin.exists() {
		bail!("{} not found: run `cargo build --release -p provenant-node` first", bin.display());
	}
	Ok(bin)
}

/// The release `provenant` wallet CLI, next to the node binary.
pub fn cli_binary() -> Result<PathBuf> {
	let bin = node_binary()?.with_file_name("provenant");
	if !bin.exists() {
		bail!("{} not found: run `cargo build --release --workspace` first", bin.display());
	}
	Ok(bin)
}

/// The outcome of one `provenant` invocation.
#[derive(Debug)]
pub struct CliOutput {
	/// Whether it exited 0.
	pub success: bool,
	/// Standard output.
	pub stdout: String,
	/// Standard error.
	pub stderr: String,
}

impl CliOutput {
	/// Standard output parsed as JSON (for `--json` runs).
	pub fn json(&self) -> Result<serde_json::Value> {
		serde_json::from_str(self.stdout.trim())
			.with_context(|| format!("not JSON: {}\nstderr: {}", self.stdout, self.stderr))
	}
}

/// Runs the wallet CLI against `node`, with a keystore in `keystore_dir`.
pub fn cli(node: &Node, keystore_dir: &Path, args: &[&str]) -> Result<CliOutput> {
	let output = Command::new(cli_binary()?)
		.args(args)
		.env("PROVENANT_URL", node.ws_url())
		.env("PROVENANT_KEYSTORE", keystore_dir.join("keystore.json"))
		.env("PROVENANT_PASSWORD", "e2e password")
		.stdin(Stdio::null())
		.output()
		.context("running provenant")?;
	Ok(CliOutput {
		success: output.status.success(),
		stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
		stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
	})
}

/// A long-running `provenant` command (such as `validator auto`), stopped when dropped.
pub struct CliProcess {
	child: Child,
	/// Where its standard output and error go.
	pub log_path: PathBuf,
}

impl CliProcess {
	/// What it has printed so far.
	pub fn log(&self) -> String {
		std::fs::read_to_string(&self.log_path).unwrap_or_default()
	}

	/// Waits for it to exit by itself.
	pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
		self.child.wait()
	}
}

impl Drop for CliProcess {
	fn drop(&mut self) {
		let _ = self.child.kill();
		let _ = self.child.wait();
	}
}

/// Starts the wallet CLI against `node` in the background, logging to `log_path`.
pub fn cli_spawn(
	node: &Node,
	keystore_dir: &Path,
	args: &[&str],
	log_path: PathBuf,
) -> Result<CliProcess> {
	spawn_logged(
		Command::new(cli_binary()?)
			.args(args)
			.env("PROVENANT_URL", node.ws_url())
			.env("PROVENANT_KEYSTORE", keystore_dir.join("keystore.json"))
			.env("PROVENANT_PASSWORD", "e2e password"),
		log_path,
	)
}

/// Starts `command` in the background, its output going to `log_path`; killed on drop.
pub fn spawn_logged(command: &mut Command, log_path: PathBuf) -> Result<CliProcess> {
	let log = std::fs::File::create(&log_path)?;
	let child = command
		.stdin(Stdio::null())
		.stdout(log.try_clone()?)
		.stderr(log)
		.spawn()
		.with_context(|| format!("starting {:?}", command.get_program()))?;
	Ok(CliProcess { child, log_path })
}

/// A free TCP port on 127.0.0.1, found by binding to port 0.
pub fn free_port() -> u16 {
	TcpListener::bind("127.0.0.1:0")
		.and_then(|listener| listener.local_addr())
		.map(|addr| addr.port())
		.expect("the loopback interface has free ports")
}

/// Ports one node listens on.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
	/// JSON-RPC (HTTP and WebSocket).
	pub rpc: u16,
	/// libp2p / litep2p.
	pub p2p: u16,
	/// Prometheus metrics.
	pub prometheus: u16,
}

impl Ports {
	/// Three fresh free ports.
	pub fn free() -> Self {
		Self { rpc: free_port(), p2p: free_port(), prometheus: free_port() }
	}
}

/// A running `provenant-node` process.
pub struct Node {
	child: Option<Child>,
	/// The node's ports.
	pub ports: Ports,
	/// The node's base path (database and keystore).
	pub base_path: PathBuf,
	args: Vec<String>,
	log_path: PathBuf,
	_temp_dir: Option<tempfile::TempDir>,
}

impl Node {
	/// Starts a `--dev` node in a fresh temporary base path.
	pub fn start_dev() -> Result<Self> {
		let temp_dir = tempfile::tempdir()?;
		let base_path = temp_dir.path().to_path_buf();
		let mut node = Self::start(&["--dev"], base_path, Ports::free())?;
		node._temp_dir = Some(temp_dir);
		Ok(node)
	}

	/// Starts a node with `args` plus the ports and base path, logging to `<base>/node.log`.
	pub fn start(args: &[&str], base_path: PathBuf, ports: Ports) -> Result<Self> {
		std::fs::create_dir_all(&base_path)?;
		let mut node = Self {
			child: None,
			ports,
			log_path: base_path.join("node.log"),
			base_path,
			args: args.iter().map(|arg| arg.to_string()).collect(),
			_temp_dir: None,
		};
		node.spawn()?;
		Ok(node)
	}

	fn spawn(&mut self) -> Result<()> {
		let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path)?;
		let child = Command::new(node_binary()?)
			.args(&self.args)
			.arg("--base-path")
			.arg(&self.base_path)
			.args(["--rpc-port", &self.ports.rpc.to_string()])
			.args(["--port", &self.ports.p2p.to_string()])
			.args(["--prometheus-port", &self.ports.prometheus.to_string()])
			.args(["--no-telemetry", "--no-mdns"])
			.stdout(Stdio::null())
			.stderr(log)
			.spawn()
			.context("starting provenant-node")?;
		self.child = Some(child);
		Ok(())
	}

	/// `kill -9`: the node gets no chance to flush or close its database.
	pub fn kill_9(&mut self) {
		if let Some(mut child) = self.child.take() {
			let _ = child.kill();
			let _ = child.wait();
		}
	}

	/// Restarts a killed node with the same arguments, base path and ports.
	pub fn restart(&mut self) -> Result<()> {
		self.kill_9();
		self.spawn()
	}

	/// The node's WebSocket RPC URL.
	pub fn ws_url(&self) -> String {
		format!("ws://127.0.0.1:{}", self.ports.rpc)
	}

	/// The last `bytes` of the node's log, for failure messages.
	pub fn log_tail(&self, bytes: u64) -> String {
		let mut text = String::new();
		if let Ok(mut file) = File::open(&self.log_path) {
			let len = file.metadata().map(|m| m.len()).unwrap_or(0);
			let _ = file.seek(SeekFrom::Start(len.saturating_sub(bytes)));
			let _ = file.read_to_string(&mut text);
		}
		text
	}

	/// A raw JSON-RPC client, once the node answers.
	pub async fn rpc(&self) -> Result<RpcClient> {
		let deadline = Instant::now() + RPC_STARTUP_TIMEOUT;
		loop {
			match provenant_client::rpc_client(&self.ws_url()).await {
				Ok(client) => return Ok(client),
				Err(err) if Instant::now() > deadline => bail!(
					"node RPC at {} did not open: {err}\n--- node log ---\n{}",
					self.ws_url(),
					self.log_tail(4000)
				),
				Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
			}
		}
	}

	/// A typed subxt client, once the node answers.
	pub async fn client(&self) -> Result<Client> {
		let rpc = self.rpc().await?;
		Ok(Client::from_rpc_client_with_config(ProvenantConfig::default(), rpc).await?)
	}

	/// The best block's number.
	pub async fn best_number(&self) -> Result<u64> {
		let rpc = self.rpc().await?;
		header_number(&rpc, None).await
	}

	/// The last finalized block's number.
	pub async fn finalized_number(&self) -> Result<u64> {
		let rpc = self.rpc().await?;
		let hash: serde_json::Value = rpc.request("chain_getFinalizedHead", rpc_params![]).await?;
		header_number(&rpc, Some(hash)).await
	}

	/// Waits until the node has finalized block `number`; returns the finalized number.
	pub async fn wait_for_finalized(&self, number: u64, timeout: Duration) -> Result<u64> {
		self.wait_for("finalized", number, timeout, || self.finalized_number()).await
	}

	/// Waits until the best block reaches `number`; returns the best number.
	pub async fn wait_for_best(&self, number: u64, timeout: Duration) -> Result<u64> {
		self.wait_for("best", number, timeout, || self.best_number()).await
	}

	async fn wait_for<F: std::future::Future<Output = Result<u64>>>(
		&self,
		what: &str,
		number: u64,
		timeout: Duration,
		height: impl Fn() -> F,
	) -> Result<u64> {
		let deadline = Instant::now() + timeout;
		loop {
			let reached = height().await.unwrap_or(0);
			if reached >= number {
				return Ok(reached);
			}
			if Instant::now() > deadline {
				bail!(
					"node on port {} reached {what} #{reached}, not #{number}, within {timeout:?}\n--- node log ---\n{}",
					self.ports.rpc,
					self.log_tail(4000)
				);
			}
			tokio::time::sleep(Duration::from_millis(500)).await;
		}
	}
}

impl Drop for Node {
	fn drop(&mut self) {
		self.kill_9();
	}
}

/// The number in the header of block `hash` (the best block when `None`).
async fn header_number(rpc: &RpcClient, hash: Option<serde_json::Value>) -> Result<u64> {
	let header: serde_json::Value = rpc.request("chain_getHeader", rpc_params![hash]).await?;
	let number =
		header["number"].as_str().ok_or_else(|| anyhow!("header without a number: {header}"))?;
	Ok(u64::from_str_radix(number.trim_start_matches("0x"), 16)?)
}

/// The free balance of `account` at the best finalized block, in plancks.
pub async fn free_balance(
	client: &Client,
	account: &provenant_client::subxt::utils::AccountId32,
) -> Result<u128> {
	let at = client.at_current_block().await?;
	let info = at
		.storage()
		.fetch(provenant_client::runtime::storage().system().account(), (*account,))
		.await?
		.decode()?;
	Ok(info.data.free)
}

/// The account's next nonce at the best finalized block.
pub async fn nonce(
	client: &Client,
	account: &provenant_client::subxt::utils::AccountId32,
) -> Result<u64> {
	let at = client.at_current_block().await?;
	Ok(at.transactions().account_nonce(account).await?)
}

/// Runs the CLI with `--json` and returns its JSON output, failing on a non-zero exit.
pub fn ok_json(node: &Node, dir: &Path, args: &[&str]) -> Result<serde_json::Value> {
	let mut args = args.to_vec();
	args.push("--json");
	let out = cli(node, dir, &args)?;
	anyhow::ensure!(out.success, "provenant {args:?} failed:\n{}\n{}", out.stdout, out.stderr);
	out.json()
}

/// Runs the CLI expecting a refusal; returns its error text.
pub fn refused(node: &Node, dir: &Path, args: &[&str]) -> Result<String> {
	let out = cli(node, dir, args)?;
	anyhow::ensure!(!out.success, "provenant {args:?} should have been refused:\n{}", out.stdout);
	Ok(out.stderr)
}

/// Writes `bytes` to `dir/name` and returns the path as text.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
	let path = dir.join(name);
	std::fs::write(&path, bytes).expect("the test directory is writable");
	path.display().to_string()
}

/// Creates a datanet of `kind` owned by Alice; returns its id.
pub fn create_datanet(node: &Node, dir: &Path, kind: &str, name: &str) -> Result<u64> {
	let created = ok_json(
		node,
		dir,
		&["datanet", "create", "--name", name, "--kind", kind, "--from", "//Alice"],
	)?;
	created["id"].as_u64().ok_or_else(|| anyhow!("no datanet id in {created}"))
}

/// Waits until `count` contributions of `datanet` have a verdict; returns each one's status
/// and reason. On a timeout the error carries the validator workers' logs.
pub async fn wait_for_verdicts(
	node: &Node,
	dir: &Path,
	datanet: &str,
	count: usize,
	workers: &[CliProcess],
	timeout: Duration,
) -> Result<std::collections::HashMap<u64, (String, Option<String>)>> {
	let deadline = Instant::now() + timeout;
	loop {
		let listed = ok_json(node, dir, &["contributions", "--datanet", datanet])?;
		let verdicts: std::collections::HashMap<_, _> = listed
			.as_array()
			.ok_or_else(|| anyhow!("not a list: {listed}"))?
			.iter()
			.filter(|c| c["status"] != "pending")
			.filter_map(|c| {
				let reason = c["reason"].as_str().map(String::from);
				Some((c["contribution"].as_u64()?, (c["status"].as_str()?.to_string(), reason)))
			})
			.collect();
		if verdicts.len() >= count {
			return Ok(verdicts);
		}
		if Instant::now() > deadline {
			let logs: Vec<_> = workers.iter().map(|w| w.log()).collect();
			bail!(
				"only {} of {count} verdicts; worker logs:\n{}",
				verdicts.len(),
				logs.join("\n---\n")
			);
		}
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
}

/// A release binary of this workspace next to the node, such as `provenant-trainer`.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
	let bin = node_binary()?.with_file_name(name);
	if !bin.exists() {
		bail!("{} not found: run `cargo build --release --workspace` first", bin.display());
	}
	Ok(bin)
}
