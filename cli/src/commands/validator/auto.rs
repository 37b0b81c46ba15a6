//! `provenant validator auto --datanet <id>`: a worker that judges a datanet's contributions
//! by itself. Each round it:
//!
//! 1. fetches every pending file it has not judged, by hash, and checks the bytes against the
//!    hash on chain;
//! 2. checks it ([`provenant_quality`]): decoding, structure, near-duplicates of the datanet's
//!    earlier files that were not rejected;
//! 3. commits a sealed ballot with the reason, keeping the salt as `vote` does;
//! 4. reveals once the reveal window opens, and closes votes whose reveal window is over.
//!
//! A round's transactions are signed with consecutive nonces and sent together, so many
//! files fit in one commit window.

use std::{
	collections::{HashMap, HashSet},
	future::Future,
	pin::Pin,
	time::Duration,
};

use anyhow::{anyhow, bail, Context as _, Result};
use pallet_datanets::ContributionStatus;
use pallet_validation::{Ballot, Salt};
use provenant_client::{
	runtime,
	subxt::utils::{AccountId32, Static},
	subxt_signer::sr25519::Keypair,
	Client,
};
use provenant_quality::{Corpus, Fingerprint};
use serde_json::json;

use crate::{
	chain::{self, ballot_name},
	context::Context,
	votes,
};

/// Judge a datanet's contributions automatically.
#[derive(Debug, clap::Args)]
pub(crate) struct AutoArgs {
	/// The datanet to judge; the validator must serve it.
	#[arg(long)]
	datanet: u32,
	/// The validator's key.
	#[arg(long)]
	from: String,
	/// Seconds between rounds.
	#[arg(long, default_value_t = 2)]
	interval: u64,
}

/// A transaction in flight, and what to print once it is final.
type Action = Pin<Box<dyn Future<Output = Result<String>> + Send>>;

/// A transaction this round will send, before it has a nonce.
enum Planned {
	Commit { id: u64, sealed: [u8; 32], line: String },
	Reveal { id: u64, ballot: Ballot, salt: Salt, line: String },
	Close { id: u64 },
}

impl Planned {
	fn send(self, client: &Client, signer: &Keypair, nonce: u64) -> Action {
		let validation = runtime::transactions().validation();
		match self {
			Planned::Commit { id, sealed, line } => {
				send(client, signer, nonce, validation.commit(id, sealed), line)
			},
			Planned::Reveal { id, ballot, salt, line } => {
				send(client, signer, nonce, validation.reveal(id, Static(ballot), salt), line)
			},
			Planned::Close { id } => {
				send(client, signer, nonce, validation.close(id), format!("#{id}: closed"))
			},
		}
	}
}

async fn fetch(rpc: &provenant_client::subxt::rpcs::RpcClient, hash: [u8; 32]) -> Result<Vec<u8>> {
	provenant_client::fetch_content(rpc, &hash)
		.await
		.with_context(|| format!("fetching 0x{}", hex::encode(hash)))
}

/// Signs `call` with `nonce` and sends it; the future resolves when it is final.
fn send<Call>(client: &Client, signer: &Keypair, nonce: u64, call: Call, done: String) -> Action
where
	Call: provenant_client::subxt::transactions::Payload + Send + Sync + 'static,
{
	let (client, signer) = (client.clone(), signer.clone());
	Box::pin(async move {
		provenant_client::submit_and_finalize_with_nonce(&client, &call, &signer, nonce).await?;
		Ok(done)
	})
}

impl AutoArgs {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let client = context.connect().await?;
		let rpc = provenant_client::rpc_client(&context.url).await?;
		let signer = context.signer(&self.from)?;
		let me = signer.public_key().to_account_id();
		let at = client.at_current_block().await?;
		let validator = at
			.storage()
			.try_fetch(runtime::storage().validation().validators(), (me,))
			.await?
			.ok_or_else(|| anyhow!("{me} has no stake; run `provenant validator bond` first"))?
			.decode()?;
		if !validator.datanets.0.contains(&self.datanet) {
			bail!(
				"{me} does not serve datanet {}; bond for it with `--datanet {}`",
				self.datanet,
				self.datanet
			);
		}
		context.emit(
			format!("judging datanet {} as {me}", self.datanet),
			json!({ "event": "started", "datanet": self.datanet }),
		);

		let mut fingerprints: HashMap<u64, Fingerprint> = HashMap::new();
		let mut judged = HashSet::new();
		let mut closing = HashMap::new();
		loop {
			let round = self.round(
				context,
				&client,
				&rpc,
				&signer,
				&me,
				&mut fingerprints,
				&mut judged,
				&mut closing,
			);
			if let Err(err) = round.await {
				context.emit(
					format!("round failed: {err:#}"),
					json!({ "event": "error", "error": format!("{err:#}") }),
				);
			}
			tokio::time::sleep(Duration::from_secs(self.interval)).await;
		}
	}

	#[allow(clippy::too_many_arguments)]
	async fn round(
		&self,
		context: &Context,
		client: &Client,
		rpc: &provenant_client::subxt::rpcs::RpcClient,
		signer: &Keypair,
		me: &AccountId32,
		fingerprints: &mut HashMap<u64, Fingerprint>,
		judged: &mut HashSet<u64>,
		closing: &mut HashMap<u64, u32>,
	) -> Result<()> {
		let rules = chain::validation_params(client).await?;
		let at = client.at_current_block().await?;
		let now = at.block_number() as u32;
		let mut entries =
			at.storage().iter(runtime::storage().datanets().contributions(), ()).await?;
		let mut records = Vec::new();
		while let Some(entry) = entries.next().await {
			let entry = entry?;
			let (id,) = entry.key()?.decode()?;
			let record = entry.value().decode()?;
			if record.datanet == self.datanet {
				records.push((id, record));
			}
		}
		records.sort_by_key(|(id, _)| *id);

		let mut planned = Vec::new();
		let mut corpus = Corpus::default();
		for (id, record) in &records {
			let contributor = AccountId32::from(record.contributor.0);
			let commit_end = record.block + rules.commit_period;
			let reveal_end = commit_end + rules.reveal_period;
			let is_pending = record.status.0 == ContributionStatus::Pending;
			if record.status.0 == ContributionStatus::Rejected {
				continue;
			}
			let format = record.format.0;
			let path = votes::path(context, *id, me);
			// Judge while the commit window has a block to spare for inclusion.
			if is_pending && contributor != *me && now < commit_end && !judged.contains(id) {
				let bytes = fetch(rpc, record.hash).await?;
				let (ballot, fingerprint, why) = provenant_quality::judge(format, &bytes, &corpus);
				fingerprints.insert(*id, fingerprint);
				let already = at
					.storage()
					.try_fetch(runtime::storage().validation().commits(), (*id, *me))
					.await?
					.is_some();
				if !already {
					let mut salt: Salt = [0u8; 32];
					getrandom::getrandom(&mut salt).map_err(|e| anyhow!("no randomness: {e}"))?;
					votes::save(&path, &ballot, &salt)?;
					let sealed = pallet_validation::commitment(&ballot, &salt, &me.0);
					let line = format!("#{id}: committed {}: {why}", ballot_name(&ballot));
					planned.push(Planned::Commit { id: *id, sealed, line });
				}
				judged.insert(*id);
			}
			if !fingerprints.contains_key(id) {
				let bytes = fetch(rpc, record.hash).await?;
				let fingerprint =
					provenant_quality::inspect(format, &bytes).unwrap_or(Fingerprint::None);
				fingerprints.insert(*id, fingerprint);
			}
			corpus.insert(*id, fingerprints[id].clone());
			if !is_pending {
				continue;
			}
			if now > commit_end && now <= reveal_end {
				if let Some((ballot, salt)) = votes::load(&path)? {
					std::fs::remove_file(&path).ok();
					let line = format!("#{id}: revealed {}", ballot_name(&ballot));
					planned.push(Planned::Reveal { id: *id, ballot, salt, line });
				}
			}
			// Anyone may close; a worker that loses the race to another pays only a fee. A
			// close that did not land is retried a few blocks later.
			if now > reveal_end && closing.get(id).is_none_or(|sent| now > sent + 3) {
				closing.insert(*id, now);
				planned.push(Planned::Close { id: *id });
			}
		}
		if planned.is_empty() {
			return Ok(());
		}
		let first = provenant_client::next_nonce(rpc, me).await?;
		let sends: Vec<Action> = planned
			.into_iter()
			.zip(first..)
			.map(|(plan, nonce)| plan.send(client, signer, nonce))
			.collect();
		for outcome in futures::future::join_all(sends).await {
			match outcome {
				Ok(line) => context.emit(&line, json!({ "event": "done", "what": line })),
				Err(err) => context.emit(
					format!("a transaction failed: {err:#}"),
					json!({ "event": "failed", "error": format!("{err:#}") }),
				),
			}
		}
		Ok(())
	}
}
