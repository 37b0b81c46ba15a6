//! The `local` chain's four validators (Alice, Bob, Charlie, Dave) run as separate processes
//! on loopback. GRANDPA needs more than two thirds of the voters, so with four validators one
//! may stop while finality continues; when it returns it catches up.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{ensure, Context};
use provenant_e2e::{node_binary, Node, Ports};

const TIMEOUT: Duration = Duration::from_secs(180);

/// Writes a fixed node key for `name` and returns its path and libp2p peer id, as printed by
/// the node's own `key inspect-node-key`.
fn node_key(dir: &Path, index: u8) -> anyhow::Result<(String, String)> {
	let path = dir.join(format!("node-key-{index}"));
	std::fs::write(&path, format!("{:064x}", u64::from(index) + 1))?;
	let output = Command::new(node_binary()?)
		.args(["key", "inspect-node-key", "--file"])
		.arg(&path)
		.output()
		.context("running key inspect-node-key")?;
	ensure!(output.status.success(), "inspect-node-key failed: {output:?}");
	let peer_id = String::from_utf8(output.stdout)?.trim().to_string();
	Ok((path.display().to_string(), peer_id))
}

#[tokio::test]
async fn finality_survives_a_stopped_validator_which_then_catches_up() -> anyhow::Result<()> {
	let base = tempfile::tempdir()?;
	let validators = ["alice", "bob", "charlie", "dave"];
	let ports: Vec<Ports> = validators.iter().map(|_| Ports::free()).collect();
	let (_, alice_peer) = node_key(base.path(), 0)?;
	let bootnode = format!("/ip4/127.0.0.1/tcp/{}/p2p/{alice_peer}", ports[0].p2p);

	let mut nodes = Vec::new();
	for (index, name) in validators.iter().enumerate() {
		let (key_file, _) = node_key(base.path(), index as u8)?;
		let flag = format!("--{name}");
		let mut args =
			vec!["--chain", "local", flag.as_str(), "--node-key-file", key_file.as_str()];
		if index > 0 {
			args.extend(["--bootnodes", bootnode.as_str()]);
		}
		nodes.push(Node::start(&args, base.path().join(name), ports[index])?);
	}

	for node in &nodes {
		node.wait_for_finalized(3, TIMEOUT).await?;
	}

	// Stop Dave: three of four voters remain, enough for GRANDPA.
	nodes[3].kill_9();
	let finalized_without_dave = nodes[0].finalized_number().await?;
	let finalized = nodes[0].wait_for_finalized(finalized_without_dave + 3, TIMEOUT).await?;
	nodes[1].wait_for_finalized(finalized, TIMEOUT).await?;

	// Dave returns and catches up with what was finalized while it was away.
	nodes[3].restart()?;
	let dave_finalized = nodes[3].wait_for_finalized(finalized + 1, TIMEOUT).await?;
	assert!(dave_finalized > finalized);
	assert!(nodes[3].best_number().await? >= dave_finalized);
	Ok(())
}
