//! `provenant-load`: the load generator behind `scripts/bench-throughput.sh`.
//!
//! Against a running dev node it funds N accounts, then measures, in the same run:
//! 1. plain balance transfers, `per-account` from each account;
//! 2. 1 KiB text contributions, `per-account` from each account;
//! 3. the inclusion time of one large file.
//!
//! Each account sends its transactions in nonce order while accounts run side by side, so the
//! pool holds a backlog and the chain's intake, not the sender, sets the rate. Rates count
//! extrinsics found in new best blocks. Results print as one JSON object.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use pallet_datanets::{Caps, DataKind, Format, FormatSet};
use provenant_client::{
	runtime,
	subxt::{
		config::DefaultExtrinsicParamsBuilder,
		utils::{MultiAddress, Static},
	},
	subxt_signer::sr25519::{dev, Keypair},
	Client, ProvenantConfig, UNIT,
};

struct Args {
	url: String,
	accounts: usize,
	per_account: usize,
	file_bytes: usize,
	big_file_bytes: usize,
}

fn parse_args() -> Result<Args> {
	let mut args = Args {
		url: "ws://127.0.0.1:9944".into(),
		accounts: 400,
		per_account: 20,
		file_bytes: 1024,
		big_file_bytes: 5 * 1024 * 1024,
	};
	let mut it = std::env::args().skip(1);
	while let Some(flag) = it.next() {
		let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
		match flag.as_str() {
			"--url" => args.url = value,
			"--accounts" => args.accounts = value.parse()?,
			"--per-account" => args.per_account = value.parse()?,
			"--file-bytes" => args.file_bytes = value.parse()?,
			"--big-file-bytes" => args.big_file_bytes = value.parse()?,
			other => bail!("unknown flag {other}"),
		}
	}
	if args.per_account > 20 {
		bail!("--per-account must be at most 20: the runtime admits 20 files per account per day");
	}
	Ok(args)
}

fn load_account(index: usize) -> Result<Keypair> {
	Ok(Keypair::from_uri(&format!("//Provenant//load//{index}").parse()?)?)
}

/// Submissions in flight at once. Each account's transactions go one after another, in nonce
/// order, so none waits in the pool's small future queue; accounts run side by side.
const CONCURRENT_ACCOUNTS: usize = 128;

/// `author_submitExtrinsic` is a plain request: the pool has taken the transaction when it
/// answers. (subxt's `submit` opens a status subscription per transaction instead, and
/// thousands of those exhaust the node's per-connection subscription limit.)
async fn submit_encoded(
	rpc: &provenant_client::subxt::rpcs::RpcClient,
	encoded: &[u8],
) -> Result<()> {
	let hex = format!("0x{}", hex::encode(encoded));
	let _hash: serde_json::Value = rpc
		.request("author_submitExtrinsic", provenant_client::subxt::rpcs::rpc_params![hex])
		.await?;
	Ok(())
}

/// Signs every account's calls (immortal, with the given nonces), submits them, and measures
/// how fast the chain takes them in.
///
/// Two rates come out. `perSecond` runs from the first submission to the block holding the
/// last transaction. `sustainedPerSecond` is the chain's intake once it is busy: transactions
/// in the blocks after the first busy one, over the time between the first and last busy
/// blocks' arrival, so it is not diluted by waiting for the first slot.
async fn measure<Call: provenant_client::subxt::transactions::Payload>(
	client: &Client,
	url: &str,
	what: (&str, &str),
	per_account: Vec<Vec<(Keypair, u64, Call)>>,
) -> Result<serde_json::Value> {
	use provenant_client::subxt::ext::futures::{stream, StreamExt};

	let at = client.at_current_block().await?;
	let mut signed_per_account = Vec::with_capacity(per_account.len());
	for calls in &per_account {
		let mut signed = Vec::with_capacity(calls.len());
		for (signer, nonce, call) in calls {
			// Immortal: thousands of transactions are signed before any is sent.
			let params = DefaultExtrinsicParamsBuilder::<ProvenantConfig>::new()
				.nonce(*nonce)
				.immortal()
				.build();
			// Offline: with the nonce and era given, nothing needs fetching per transaction.
			let mut signable = at.transactions().create_signable_offline(call, params)?;
			signed.push(signable.sign(signer)?.into_encoded());
		}
		signed_per_account.push(signed);
	}
	let total: usize = signed_per_account.iter().map(Vec::len).sum();

	let mut blocks = client.stream_best_blocks().await?;
	let start = Instant::now();
	let rpc = provenant_client::rpc_client(url).await?;
	let mut submitter = tokio::spawn(async move {
		let rpc = &rpc;
		let results: Vec<Result<()>> = stream::iter(signed_per_account)
			.map(|signed| async move {
				for tx in signed {
					submit_encoded(rpc, &tx).await?;
				}
				Ok(())
			})
			.buffer_unordered(CONCURRENT_ACCOUNTS)
			.collect()
			.await;
		results.into_iter().collect::<Result<Vec<()>>>().map(|_| start.elapsed())
	});

	// (arrival time, count) of each block holding some of these transactions.
	let mut busy_blocks: Vec<(Duration, usize)> = Vec::new();
	let mut included = 0usize;
	let mut submitted: Option<Duration> = None;
	let deadline = Instant::now() + Duration::from_secs(900);
	while included < total {
		if Instant::now() > deadline {
			bail!("only {included} of {total} {}.{} were included in 15 minutes", what.0, what.1);
		}
		// A refused submission would leave us waiting for blocks that never hold it.
		if submitted.is_none() && submitter.is_finished() {
			submitted = Some(
				(&mut submitter)
					.await?
					.map_err(|err| anyhow!("submitting {}.{}: {err}", what.0, what.1))?,
			);
		}
		let Some(block) = blocks.next().await else { bail!("block stream ended") };
		let block = block?;
		let block_at = block.at().await?;
		let extrinsics = block_at.extrinsics().fetch().await?;
		let here = extrinsics
			.iter()
			.filter_map(Result::ok)
			.filter(|ext| ext.pallet_name() == what.0 && ext.call_name() == what.1)
			.count();
		if here > 0 {
			included += here;
			busy_blocks.push((start.elapsed(), here));
		}
	}
	let submit_time = match submitted {
		Some(time) => time,
		None => {
			submitter.await?.map_err(|err| anyhow!("submitting {}.{}: {err}", what.0, what.1))?
		},
	};
	let last = busy_blocks.last().map(|(at, _)| *at).unwrap_or_default();
	let sustained = match busy_blocks.as_slice() {
		[(first_at, _), rest @ ..] if !rest.is_empty() => {
			let after_first: usize = rest.iter().map(|(_, count)| count).sum();
			Some(after_first as f64 / (last - *first_at).as_secs_f64())
		},
		_ => None,
	};
	Ok(serde_json::json!({
		"count": total,
		"submitSeconds": submit_time.as_secs_f64(),
		"submittedPerSecond": total as f64 / submit_time.as_secs_f64(),
		"inclusionSeconds": last.as_secs_f64(),
		"perSecond": total as f64 / last.as_secs_f64(),
		"sustainedPerSecond": sustained,
		"blocks": busy_blocks.len(),
		"perBlock": busy_blocks.iter().map(|(_, count)| count).collect::<Vec<_>>(),
	}))
}

#[tokio::main]
async fn main() -> Result<()> {
	let args = parse_args()?;
	let client = provenant_client::connect(&args.url).await?;
	let alice = dev::alice();
	let accounts: Vec<Keypair> = (0..args.accounts).map(load_account).collect::<Result<_>>()?;

	// Fund every account, a few hundred transfers a batch, and make a text datanet with room
	// for the run. 100 PRV covers each account's fees and its transfers to Bob.
	for chunk in accounts.chunks(500) {
		let funding: Vec<_> = chunk
			.iter()
			.map(|account| {
				runtime::runtime_types::provenant_runtime::RuntimeCall::Balances(
					runtime::runtime_types::pallet_balances::pallet::Call::transfer_keep_alive {
						dest: MultiAddress::Id(account.public_key().to_account_id()),
						value: 100 * UNIT,
					},
				)
			})
			.collect();
		provenant_client::submit_and_finalize(
			&client,
			&runtime::transactions().utility().batch_all(funding),
			&alice,
		)
		.await?;
	}
	let formats = FormatSet::of(&[Format::Txt, Format::Jsonl, Format::Csv]);
	let caps = Caps { max_file_bytes: 8 * 1024 * 1024, daily_bytes: u64::MAX };
	let create = runtime::transactions().datanets().create(
		b"load".to_vec(),
		vec![],
		vec![],
		Static(DataKind::Text),
		Static(formats),
		Static(caps),
	);
	provenant_client::submit_and_finalize(&client, &create, &alice).await?;
	let datanet = 0u32;

	let bob = MultiAddress::Id(dev::bob().public_key().to_account_id());
	let mut transfers = Vec::with_capacity(accounts.len());
	let mut contributions = Vec::with_capacity(accounts.len());
	for (index, account) in accounts.iter().enumerate() {
		let per_account = args.per_account as u64;
		transfers.push(
			(0..per_account)
				.map(|nonce| {
					let call =
						runtime::transactions().balances().transfer_keep_alive(bob.clone(), UNIT);
					(account.clone(), nonce, call)
				})
				.collect::<Vec<_>>(),
		);
		contributions.push(
			(0..per_account)
				.map(|k| {
					let mut text = format!("# load {index} {k}\n").into_bytes();
					text.resize(args.file_bytes, b'a');
					let call = runtime::transactions().datanets().submit(datanet, text);
					(account.clone(), per_account + k, call)
				})
				.collect::<Vec<_>>(),
		);
	}
	let transfer_rate =
		measure(&client, &args.url, ("Balances", "transfer_keep_alive"), transfers).await?;
	let contribution_rate =
		measure(&client, &args.url, ("Datanets", "submit"), contributions).await?;

	// One large file from a fresh funded account: blocks from submission to inclusion.
	let big_sender = load_account(args.accounts)?;
	provenant_client::submit_and_finalize(
		&client,
		&runtime::transactions().balances().transfer_keep_alive(
			MultiAddress::Id(big_sender.public_key().to_account_id()),
			100 * UNIT,
		),
		&alice,
	)
	.await?;
	let mut big = b"# big\n".to_vec();
	big.resize(args.big_file_bytes, b'b');
	let rpc = provenant_client::rpc_client(&args.url).await?;
	let best_header: serde_json::Value =
		rpc.request("chain_getHeader", provenant_client::subxt::rpcs::rpc_params![]).await?;
	let best_at_submission = best_header["number"]
		.as_str()
		.and_then(|hex| u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok())
		.ok_or_else(|| anyhow!("chain_getHeader gave no block number"))?;
	let start = Instant::now();
	let progress = client
		.at_current_block()
		.await?
		.transactions()
		.sign_and_submit_then_watch_default(
			&runtime::transactions().datanets().submit(datanet, big),
			&big_sender,
		)
		.await?;
	let mut progress = progress;
	let in_block = loop {
		use provenant_client::subxt::transactions::TransactionStatus;
		match progress.next().await.ok_or_else(|| anyhow!("watch ended"))?? {
			TransactionStatus::InBestBlock(in_block) => break in_block,
			TransactionStatus::Invalid { message }
			| TransactionStatus::Error { message }
			| TransactionStatus::Dropped { message } => bail!("the large file was refused: {message}"),
			_ => {},
		}
	};
	let seconds = start.elapsed().as_secs_f64();
	in_block.wait_for_success().await?;
	let included_at = client.at_block(in_block.block_hash()).await?.block_number();

	let report = serde_json::json!({
		"accounts": args.accounts,
		"perAccount": args.per_account,
		"transfers": transfer_rate,
		"contributions": contribution_rate,
		"contributionToTransferRatio":
			contribution_rate["perSecond"].as_f64().unwrap() / transfer_rate["perSecond"].as_f64().unwrap(),
		"largeFile": {
			"bytes": args.big_file_bytes,
			"seconds": seconds,
			"bestBlockAtSubmission": best_at_submission,
			"includedInBlock": included_at,
			"blocksAfterSubmission": included_at - best_at_submission,
		},
	});
	println!("{report}");
	Ok(())
}
