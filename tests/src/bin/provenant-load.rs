//! `provenant-load`: the load generator behind `scripts/bench-throughput.sh`.
//!
//! Against a running dev node it funds N accounts, then measures, in the same run:
//! 1. plain balance transfers, `per-account` from each account, all sent at once;
//! 2. 1 KiB text contributions, `per-account` from each account, all sent at once;
//! 3. the inclusion time of one large file.
//!
//! Rates count extrinsics found in new best blocks, over the wall time from the first
//! submission to the block that held the last one. Results print as one JSON object.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use provenant_client::{
	runtime::{self, runtime_types::pallet_datanets},
	subxt::{config::DefaultExtrinsicParamsBuilder, ext::futures::future::join_all, utils::MultiAddress},
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
		accounts: 100,
		per_account: 10,
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

/// Signs `calls[i]` for `signers[i % n]` with consecutive nonces, submits them all at once, and
/// returns the measured inclusion rate.
async fn measure<Call: provenant_client::subxt::transactions::Payload>(
	client: &Client,
	what: (&str, &str),
	signed: Vec<(Keypair, u64, Call)>,
) -> Result<serde_json::Value> {
	let at = client.at_current_block().await?;
	let mut encoded = Vec::with_capacity(signed.len());
	for (signer, nonce, call) in &signed {
		// Immortal: thousands of transactions are signed before any is sent.
		let params =
			DefaultExtrinsicParamsBuilder::<ProvenantConfig>::new().nonce(*nonce).immortal().build();
		encoded.push(at.transactions().create_signed(call, signer, params).await?);
	}
	let total = encoded.len();
	let mut blocks = client.stream_best_blocks().await?;
	let start = Instant::now();
	let results = join_all(encoded.iter().map(|tx| tx.submit())).await;
	let submit_time = start.elapsed();
	if let Some(err) = results.into_iter().find_map(Result::err) {
		bail!("submitting {}.{}: {err}", what.0, what.1);
	}
	let (mut included, mut blocks_used, mut last) = (0usize, 0u32, start.elapsed());
	let deadline = Instant::now() + Duration::from_secs(600);
	while included < total {
		if Instant::now() > deadline {
			bail!("only {included} of {total} {}.{} were included in 10 minutes", what.0, what.1);
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
			blocks_used += 1;
			last = start.elapsed();
		}
	}
	let seconds = last.as_secs_f64();
	Ok(serde_json::json!({
		"count": total,
		"submitSeconds": submit_time.as_secs_f64(),
		"inclusionSeconds": seconds,
		"perSecond": total as f64 / seconds,
		"blocks": blocks_used,
	}))
}

#[tokio::main]
async fn main() -> Result<()> {
	let args = parse_args()?;
	let client = provenant_client::connect(&args.url).await?;
	let alice = dev::alice();
	let accounts: Vec<Keypair> = (0..args.accounts).map(load_account).collect::<Result<_>>()?;

	// Fund every account in one batch, and make a text datanet with room for the run.
	let funding: Vec<_> = accounts
		.iter()
		.map(|account| {
			runtime::runtime_types::provenant_runtime::RuntimeCall::Balances(
				runtime::runtime_types::pallet_balances::pallet::Call::transfer_keep_alive {
					dest: MultiAddress::Id(account.public_key().to_account_id()),
					value: 1_000 * UNIT,
				},
			)
		})
		.collect();
	provenant_client::submit_and_finalize(&client, &runtime::transactions().utility().batch_all(funding), &alice).await?;
	let formats = pallet_datanets::types::FormatSet(0b111);
	let caps = pallet_datanets::types::Caps { max_file_bytes: 8 * 1024 * 1024, daily_bytes: u64::MAX };
	let create = runtime::transactions().datanets().create(
		b"load".to_vec(),
		vec![],
		vec![],
		pallet_datanets::format::DataKind::Text,
		formats,
		caps,
	);
	provenant_client::submit_and_finalize(&client, &create, &alice).await?;
	let datanet = 0u32;

	let bob = MultiAddress::Id(dev::bob().public_key().to_account_id());
	let mut transfers = Vec::new();
	let mut contributions = Vec::new();
	for (index, account) in accounts.iter().enumerate() {
		for k in 0..args.per_account {
			transfers.push((
				account.clone(),
				k as u64,
				runtime::transactions().balances().transfer_keep_alive(bob.clone(), UNIT),
			));
			let mut text = format!("# load {index} {k}\n").into_bytes();
			text.resize(args.file_bytes, b'a');
			contributions.push((
				account.clone(),
				(args.per_account + k) as u64,
				runtime::transactions().datanets().submit(datanet, text),
			));
		}
	}
	let transfer_rate = measure(&client, ("Balances", "transfer_keep_alive"), transfers).await?;
	let contribution_rate = measure(&client, ("Datanets", "submit"), contributions).await?;

	// One large file from a fresh funded account: blocks from submission to inclusion.
	let big_sender = load_account(args.accounts)?;
	provenant_client::submit_and_finalize(
		&client,
		&runtime::transactions()
			.balances()
			.transfer_keep_alive(MultiAddress::Id(big_sender.public_key().to_account_id()), 1_000 * UNIT),
		&alice,
	)
	.await?;
	let mut big = b"# big\n".to_vec();
	big.resize(args.big_file_bytes, b'b');
	let best_before = client.at_current_block().await?.block_number();
	let start = Instant::now();
	let progress = client
		.at_current_block()
		.await?
		.transactions()
		.sign_and_submit_then_watch_default(&runtime::transactions().datanets().submit(datanet, big), &big_sender)
		.await?;
	let mut progress = progress;
	let in_block = loop {
		use provenant_client::subxt::transactions::TransactionStatus;
		match progress.next().await.ok_or_else(|| anyhow!("watch ended"))?? {
			TransactionStatus::InBestBlock(in_block) => break in_block,
			TransactionStatus::Invalid { message } | TransactionStatus::Error { message } | TransactionStatus::Dropped { message } =>
				bail!("the large file was refused: {message}"),
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
			"finalizedBlockAtSubmission": best_before,
			"includedInBlock": included_at,
		},
	});
	println!("{report}");
	Ok(())
}
