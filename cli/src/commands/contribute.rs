//! `provenant contribute <datanet> <file…>`: checks each file against the datanet's published
//! rules with the runtime's own rule function, then uploads the files and waits until each is
//! in a finalized block.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use pallet_datanets::{
	format,
	rules::{self, Refusal, SubmissionRules},
	DailyUsage, Format,
};
use provenant_client::{
	runtime,
	subxt::{config::DefaultExtrinsicParamsBuilder, utils::Static},
	Client, ProvenantConfig,
};
use serde_json::json;

use crate::{chain, context::Context};

/// Upload files to a datanet.
#[derive(Debug, clap::Args)]
pub(crate) struct Command {
	/// The datanet's number.
	datanet: u32,
	/// The files to upload.
	#[arg(required = true)]
	files: Vec<PathBuf>,
	/// The contributor: a key name or a dev URI such as `//Alice`.
	#[arg(long)]
	from: String,
}

fn usage(stored: Option<Static<DailyUsage>>, today: u32) -> DailyUsage {
	stored.map(|usage| usage.0).unwrap_or_default().on(today)
}

/// The rules the chain will apply to the contributor's next file in `datanet`.
async fn current_rules(
	client: &Client,
	datanet: u32,
	who: &provenant_client::subxt::utils::AccountId32,
) -> Result<SubmissionRules> {
	let info = chain::datanet(client, datanet).await?;
	let at = client.at_current_block().await?;
	let constants = runtime::constants().datanets();
	let blocks_per_day = at.constants().entry(constants.blocks_per_day())?;
	// The next block is where the submission lands.
	let today = ((at.block_number() + 1) / u64::from(blocks_per_day)) as u32;
	let storage = runtime::storage().datanets();
	let account_usage = at
		.storage()
		.try_fetch(storage.account_usage(), (*who,))
		.await?
		.map(|v| v.decode())
		.transpose()?;
	let datanet_usage = at
		.storage()
		.try_fetch(storage.datanet_usage(), (datanet,))
		.await?
		.map(|v| v.decode())
		.transpose()?;
	Ok(SubmissionRules {
		kind: info.kind.0,
		formats: info.formats.0,
		caps: info.caps.0,
		status: info.status.0,
		account_usage: usage(account_usage, today),
		datanet_usage: usage(datanet_usage, today),
		account_daily_files: at.constants().entry(constants.account_daily_files())?,
		account_daily_bytes: at.constants().entry(constants.account_daily_bytes())?,
	})
}

/// The refusal in words; for text that the datanet admits only as JSON lines or CSV, also the
/// first line that keeps it from being one.
fn explain(refusal: &Refusal, rules: &SubmissionRules, bytes: &[u8]) -> String {
	let mut words = refusal.to_string();
	if let Refusal::FormatNotAllowed { .. } = refusal {
		for wanted in Format::ALL.into_iter().filter(|format| rules.formats.contains(*format)) {
			if let Some(why) = format::why_not(bytes, wanted) {
				words.push_str(&format!("; not {}: {why}", wanted.name()));
			}
		}
	}
	words
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let signer = context.signer(&self.from)?;
		let who = signer.public_key().to_account_id();
		let client = context.connect().await?;
		let mut rules = current_rules(&client, self.datanet, &who).await?;
		let at = client.at_current_block().await?;

		// Judge every file first, carrying usage forward, so nothing is paid for in vain.
		let mut admitted = Vec::new();
		let mut refusals = Vec::new();
		let mut batch_hashes = Vec::new();
		for path in &self.files {
			let bytes =
				std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
			let known = at
				.storage()
				.try_fetch(
					runtime::storage().datanets().contribution_by_content(),
					(self.datanet, rules::content_hash(&bytes)),
				)
				.await?
				.is_some();
			match rules::check(&rules, &bytes, |hash| known || batch_hashes.contains(hash)) {
				Ok(ok) => {
					rules.account_usage = ok.account_usage;
					rules.datanet_usage = ok.datanet_usage;
					batch_hashes.push(ok.hash);
					admitted.push((path.clone(), bytes, ok));
				},
				Err(refusal) => refusals.push((path.clone(), explain(&refusal, &rules, &bytes))),
			}
		}
		if !refusals.is_empty() {
			let lines: Vec<String> = refusals
				.iter()
				.map(|(path, refusal)| format!("  {}: {refusal}", path.display()))
				.collect();
			if context.json {
				let list: Vec<_> = refusals
					.iter()
					.map(
						|(path, refusal)| json!({ "file": path.display().to_string(), "reason": refusal }),
					)
					.collect();
				println!("{}", json!({ "refused": list }));
			}
			bail!(
				"{} of {} file(s) break datanet {}'s rules; nothing was submitted:\n{}",
				refusals.len(),
				self.files.len(),
				self.datanet,
				lines.join("\n")
			);
		}

		let progress = if context.json {
			ProgressBar::hidden()
		} else {
			ProgressBar::new(admitted.len() as u64)
		};
		progress.set_style(
			ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} files, {elapsed}")
				.map_err(|e| anyhow!("{e}"))?
				.progress_chars("=> "),
		);
		progress.set_message("uploading");
		// Nonces are counted here, from the pool's view, so all files go out before any is
		// included.
		let rpc = provenant_client::rpc_client(&context.url).await?;
		let first_nonce = provenant_client::next_nonce(&rpc, &who).await?;
		let mut watches = Vec::new();
		for (offset, (path, bytes, ok)) in admitted.into_iter().enumerate() {
			let call = runtime::transactions().datanets().submit(self.datanet, bytes);
			let params = DefaultExtrinsicParamsBuilder::<ProvenantConfig>::new()
				.nonce(first_nonce + offset as u64)
				.build();
			let watch = client
				.at_current_block()
				.await?
				.transactions()
				.sign_and_submit_then_watch(&call, &signer, params)
				.await
				.with_context(|| format!("submitting {}", path.display()))?;
			watches.push((path, ok, watch));
		}
		progress.set_message("waiting for finality");
		let mut results = Vec::new();
		for (path, ok, watch) in watches {
			let events = watch
				.wait_for_finalized_success()
				.await
				.with_context(|| format!("{} was refused by the chain", path.display()))?;
			let submitted = events
				.find_first::<runtime::datanets::events::ContributionSubmitted>()
				.ok_or_else(|| {
					anyhow!("no ContributionSubmitted event for {}", path.display())
				})??;
			progress.inc(1);
			results.push((path, ok, submitted.contribution));
		}
		progress.finish_and_clear();

		let human = results
			.iter()
			.map(|(path, ok, id)| {
				format!(
					"#{id:<6} {:<5} 0x{}  pending  {}",
					ok.format.name(),
					hex::encode(ok.hash),
					path.display()
				)
			})
			.collect::<Vec<_>>()
			.join("\n");
		let json: Vec<_> = results
			.iter()
			.map(|(path, ok, id)| {
				json!({
					"contribution": id,
					"file": path.display().to_string(),
					"hash": format!("0x{}", hex::encode(ok.hash)),
					"format": ok.format.name(),
					"status": "pending",
				})
			})
			.collect();
		context.emit(human, json!(json));
		Ok(())
	}
}
