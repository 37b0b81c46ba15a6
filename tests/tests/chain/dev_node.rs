//! A `--dev` node produces and finalizes blocks, serves wallet-compatible metadata and
//! Prometheus metrics, executes a signed transfer, and refuses bad transactions without
//! changing any state.

use std::{io::Read, time::Duration};

use provenant_client::{
	runtime,
	subxt::utils::{AccountId32, MultiAddress},
	subxt_signer::sr25519::{dev, Keypair},
	UNIT,
};
use provenant_e2e::{free_balance, nonce, Node};

const FINALITY_TIMEOUT: Duration = Duration::from_secs(90);

/// An account that has never held funds, derived from a fixed dev URI.
fn unfunded_keypair(name: &str) -> Keypair {
	let uri = format!("//Provenant//e2e//{name}").parse().expect("valid secret URI");
	Keypair::from_uri(&uri).expect("valid dev URI")
}

fn account(keypair: &Keypair) -> AccountId32 {
	keypair.public_key().to_account_id()
}

#[tokio::test]
async fn dev_node_finalizes_and_serves_wallet_metadata() -> anyhow::Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(2, FINALITY_TIMEOUT).await?;

	// What polkadot.js reads first: the chain's name, its token, and metadata it can decode.
	let client = node.client().await?;
	let rpc = node.rpc().await?;
	let properties: serde_json::Value =
		rpc.request("system_properties", provenant_client::subxt::rpcs::rpc_params![]).await?;
	assert_eq!(properties["tokenSymbol"], "PRV");
	assert_eq!(properties["tokenDecimals"], 12);
	let version: serde_json::Value = rpc
		.request("state_getRuntimeVersion", provenant_client::subxt::rpcs::rpc_params![])
		.await?;
	assert_eq!(version["specName"], "provenant");
	let metadata = client.at_current_block().await?.metadata();
	for pallet in ["System", "Balances", "TransactionPayment", "Sudo", "Utility"] {
		assert!(metadata.pallet_by_name(pallet).is_some(), "metadata lacks {pallet}");
	}

	// Prometheus is served as polkadot-sdk provides it.
	let metrics = http_get(node.ports.prometheus, "/metrics")?;
	assert!(
		metrics.contains("substrate_block_height{status=\"finalized\""),
		"metrics lack the finalized height:\n{}",
		&metrics[..metrics.len().min(2000)]
	);
	Ok(())
}

#[tokio::test]
async fn signed_transfer_moves_funds_and_emits_transfer_event() -> anyhow::Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, FINALITY_TIMEOUT).await?;
	let client = node.client().await?;

	let alice = dev::alice();
	let recipient = unfunded_keypair("transfer-recipient");
	let (alice_id, recipient_id) = (account(&alice), account(&recipient));
	let alice_before = free_balance(&client, &alice_id).await?;
	assert_eq!(free_balance(&client, &recipient_id).await?, 0);

	let amount = 12 * UNIT;
	let transfer = runtime::transactions()
		.balances()
		.transfer_keep_alive(MultiAddress::Id(recipient_id), amount);
	let events = provenant_client::submit_and_finalize(&client, &transfer, &alice).await?;

	let transferred = events
		.find_first::<runtime::balances::events::Transfer>()
		.ok_or_else(|| anyhow::anyhow!("no Transfer event"))??;
	assert_eq!(transferred.from, alice_id);
	assert_eq!(transferred.to, recipient_id);
	assert_eq!(transferred.amount, amount);
	let fee = events
		.find_first::<runtime::transaction_payment::events::TransactionFeePaid>()
		.ok_or_else(|| anyhow::anyhow!("no TransactionFeePaid event"))??
		.actual_fee;
	assert!(fee > 0);

	let client = node.client().await?;
	assert_eq!(free_balance(&client, &recipient_id).await?, amount);
	assert_eq!(free_balance(&client, &alice_id).await?, alice_before - amount - fee);
	Ok(())
}

#[tokio::test]
async fn bad_signature_is_refused_and_changes_nothing() -> anyhow::Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, FINALITY_TIMEOUT).await?;
	let client = node.client().await?;

	let alice = dev::alice();
	let bob_id = account(&dev::bob());
	let alice_id = account(&alice);
	let (alice_before, bob_before) =
		(free_balance(&client, &alice_id).await?, free_balance(&client, &bob_id).await?);
	let alice_nonce = nonce(&client, &alice_id).await?;

	let transfer =
		runtime::transactions().balances().transfer_keep_alive(MultiAddress::Id(bob_id), UNIT);
	let at = client.at_current_block().await?;
	let mut signable =
		at.transactions().create_signable(&transfer, &alice_id, Default::default()).await?;
	// A genuine signature by Alice, but over other bytes: what a tampered transaction carries.
	let wrong_signature = alice.sign(b"not the payload Alice was asked to sign");
	let forged = signable.sign_with_account_and_signature(&alice_id, &wrong_signature.into())?;

	let err = forged.submit().await.expect_err("a forged transaction must be refused");
	let message = err.to_string();
	assert!(message.contains("bad signature"), "unexpected refusal: {message}");

	// Let a block or two pass: nothing may have changed.
	node.wait_for_finalized(node.finalized_number().await? + 2, FINALITY_TIMEOUT).await?;
	let client = node.client().await?;
	assert_eq!(free_balance(&client, &alice_id).await?, alice_before);
	assert_eq!(free_balance(&client, &bob_id).await?, bob_before);
	assert_eq!(nonce(&client, &alice_id).await?, alice_nonce);
	Ok(())
}

#[tokio::test]
async fn transfer_without_funds_is_refused_and_changes_nothing() -> anyhow::Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, FINALITY_TIMEOUT).await?;
	let client = node.client().await?;

	let pauper = unfunded_keypair("pauper");
	let pauper_id = account(&pauper);
	let bob_id = account(&dev::bob());
	let bob_before = free_balance(&client, &bob_id).await?;

	let transfer =
		runtime::transactions().balances().transfer_keep_alive(MultiAddress::Id(bob_id), 5 * UNIT);
	let err = client
		.at_current_block()
		.await?
		.transactions()
		.sign_and_submit_default(&transfer, &pauper)
		.await
		.expect_err("a transaction its sender cannot pay for must be refused");
	let message = err.to_string();
	assert!(message.contains("Inability to pay some fees"), "unexpected refusal: {message}");

	node.wait_for_finalized(node.finalized_number().await? + 2, FINALITY_TIMEOUT).await?;
	let client = node.client().await?;
	assert_eq!(free_balance(&client, &pauper_id).await?, 0);
	assert_eq!(free_balance(&client, &bob_id).await?, bob_before);
	assert_eq!(nonce(&client, &pauper_id).await?, 0);
	Ok(())
}

#[tokio::test]
async fn transfer_beyond_balance_fails_and_moves_nothing_but_the_fee() -> anyhow::Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, FINALITY_TIMEOUT).await?;
	let client = node.client().await?;

	// Fund a fresh account with 2 PRV, then let it try to send 10.
	let sender = unfunded_keypair("overspender");
	let sender_id = account(&sender);
	let bob_id = account(&dev::bob());
	let fund = runtime::transactions()
		.balances()
		.transfer_keep_alive(MultiAddress::Id(sender_id), 2 * UNIT);
	provenant_client::submit_and_finalize(&client, &fund, &dev::alice()).await?;

	let client = node.client().await?;
	let (sender_before, bob_before) =
		(free_balance(&client, &sender_id).await?, free_balance(&client, &bob_id).await?);
	let overspend =
		runtime::transactions().balances().transfer_keep_alive(MultiAddress::Id(bob_id), 10 * UNIT);
	let err = provenant_client::submit_and_finalize(&client, &overspend, &sender)
		.await
		.expect_err("a transfer beyond the balance must fail");
	let message = format!("{err:?}");
	assert!(
		message.contains("FundsUnavailable") || message.contains("InsufficientBalance"),
		"unexpected failure: {message}"
	);

	let client = node.client().await?;
	assert_eq!(free_balance(&client, &bob_id).await?, bob_before);
	let sender_after = free_balance(&client, &sender_id).await?;
	let fee = sender_before - sender_after;
	assert!(fee > 0 && fee < UNIT / 100, "only a fee may leave the sender, but {fee} did");
	Ok(())
}

/// A plain HTTP/1.0 GET on loopback, so the test needs no HTTP client crate.
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
	use std::io::Write;
	let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
	stream.set_read_timeout(Some(Duration::from_secs(10)))?;
	write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
	let mut body = String::new();
	stream.read_to_string(&mut body)?;
	Ok(body)
}
