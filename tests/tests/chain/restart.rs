//! A node killed with SIGKILL restarts on the same base path with its chain intact: heights
//! continue from where they were and an earlier transfer is still there.

use std::time::Duration;

use provenant_client::{
	runtime,
	subxt::utils::MultiAddress,
	subxt_signer::sr25519::{dev, Keypair},
	UNIT,
};
use provenant_e2e::{free_balance, Node, Ports};

const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn chain_survives_kill_9_and_resumes() -> anyhow::Result<()> {
	let base = tempfile::tempdir()?;
	let mut node = Node::start(&["--dev"], base.path().join("dev"), Ports::free())?;
	node.wait_for_finalized(1, TIMEOUT).await?;

	let recipient = Keypair::from_uri(&"//Provenant//e2e//restart".parse()?)?;
	let recipient_id = recipient.public_key().to_account_id();
	let amount = 7 * UNIT;
	let transfer = runtime::transactions()
		.balances()
		.transfer_keep_alive(MultiAddress::Id(recipient_id), amount);
	let client = node.client().await?;
	provenant_client::submit_and_finalize(&client, &transfer, &dev::alice()).await?;
	drop(client);

	let best_before = node.best_number().await?;
	let finalized_before = node.finalized_number().await?;

	node.kill_9();
	node.restart()?;

	// Straight after the restart, nothing that was finalized is lost.
	let finalized_after = node.finalized_number().await?;
	let best_after = node.best_number().await?;
	assert!(
		finalized_after >= finalized_before,
		"finalized went back from #{finalized_before} to #{finalized_after}"
	);
	assert!(
		best_after >= finalized_before,
		"best #{best_after} behind finalized #{finalized_before}"
	);

	let client = node.client().await?;
	assert_eq!(free_balance(&client, &recipient_id).await?, amount, "the transfer was lost");

	// And the chain goes on: new blocks are produced and finalized past the old heights.
	node.wait_for_best(best_before + 2, TIMEOUT).await?;
	node.wait_for_finalized(finalized_before + 2, TIMEOUT).await?;
	Ok(())
}
