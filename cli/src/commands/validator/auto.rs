//! `provenant validator auto [--datanet N]…`: one worker that judges every datanet its validator
//! serves (or the ones named), from one process and one nonce sequence. Each round it:
//!
//! 1. fetches each pending file it has not judged, by hash, and checks the bytes against the
//!    hash on chain;
//! 2. checks it ([`provenant_quality`]): decoding, structure, near-duplicates of its datanet's
//!    earlier files that were not rejected, found through an index per datanet kept beside the
//!    keystore, so a restarted worker fetches only files it has not seen;
//! 3. commits a sealed ballot with the reason. The ballot and salt are saved first, as `vote`
//!    saves them, so a commit that did not land is sent again, with the same salt, while the
//!    commit window lasts;
//! 4. reveals each of its commits the chain holds unrevealed once the reveal window opens, again
//!    every round until the reveal is final or the window closes. The saved vote is removed only
//!    then, so a worker restarted mid-window reveals what it committed;
//! 5. closes votes whose reveal window is over.
//!
//! A round's transactions are signed with consecutive nonces and sent together, so many files
//! fit in one commit window; what did not become final is planned again from the chain's state
//! in the next round. After the first round, a round reads only the records added since the
//! last one and those still pending, not the whole datanets.

use std::{
	collections::{BTreeSet, HashMap, HashSet},
	future::Future,
	path::{Path, PathBuf},
	pin::Pin,
	time::Duration,
};

use anyhow::{anyhow, bail, Context as _, Result};
use pallet_datanets::ContributionStatus;
use pallet_validation::{Ballot, Salt};
use provenant_client::{
	runtime::{self, runtime_types::pallet_datanets::types::Contribution},
	subxt::{
		rpcs::RpcClient,
		utils::{AccountId32, Static},
	},
	subxt_signer::sr25519::Keypair,
	Client,
};
use provenant_quality::{index::Index, Fingerprint};
use serde_json::json;

use crate::{
	chain::{self, ballot_name},
	context::Context,
	votes,
};

/// How long a transaction may take to become final before the next round plans it again.
const FINALITY_TIMEOUT: Duration = Duration::from_secs(90);
/// Commits sent for one file at most: one the chain refuses would otherwise cost a fee a round.
const COMMIT_ATTEMPTS: u32 = 3;

/// Judge datanets' contributions automatically.
#[derive(Debug, clap::Args)]
pub(crate) struct AutoArgs {
	/// A datanet to judge; repeat for several. By default, every datanet the validator serves,
	/// as it serves them from round to round.
	#[arg(long = "datanet")]
	datanets: Vec<u32>,
	/// The validator's key.
	#[arg(long)]
	from: String,
	/// Seconds between rounds.
	#[arg(long, default_value_t = 2)]
	interval: u64,
}

/// A contribution's record, as the chain stores it.
type Record = Contribution<AccountId32, u32>;

/// A transaction in flight, and what to print once it is final.
type Action = Pin<Box<dyn Future<Output = Result<String>> + Send>>;

/// A transaction this round will send, before it has a nonce.
enum Planned {
	Commit { id: u64, sealed: [u8; 32], line: String },
	Reveal { id: u64, ballot: Ballot, salt: Salt, saved: PathBuf },
	Close { id: u64 },
}

impl Planned {
	fn send(self, client: &Client, signer: &Keypair, nonce: u64) -> Action {
		let validation = runtime::transactions().validation();
		match self {
			Planned::Commit { id, sealed, line } => {
				send(client, signer, nonce, validation.commit(id, sealed), line, None)
			},
			Planned::Reveal { id, ballot, salt, saved } => send(
				client,
				signer,
				nonce,
				validation.reveal(id, Static(ballot), salt),
				format!("#{id}: revealed {}", ballot_name(&ballot)),
				Some(saved),
			),
			Planned::Close { id } => {
				send(client, signer, nonce, validation.close(id), format!("#{id}: closed"), None)
			},
		}
	}
}

/// Signs `call` with `nonce` and sends it; the future resolves when it is final, and then
/// removes the saved vote `done_with`.
fn send<Call>(
	client: &Client,
	signer: &Keypair,
	nonce: u64,
	call: Call,
	done: String,
	done_with: Option<PathBuf>,
) -> Action
where
	Call: provenant_client::subxt::transactions::Payload + Send + Sync + 'static,
{
	let (client, signer) = (client.clone(), signer.clone());
	Box::pin(async move {
		let sent = provenant_client::submit_and_finalize_with_nonce(&client, &call, &signer, nonce);
		tokio::time::timeout(FINALITY_TIMEOUT, sent)
			.await
			.map_err(|_| anyhow!("not final after {FINALITY_TIMEOUT:?}; planned again"))??;
		if let Some(path) = done_with {
			std::fs::remove_file(&path).ok();
		}
		Ok(done)
	})
}

/// What the worker keeps between rounds.
struct Worker {
	client: Client,
	rpc: RpcClient,
	signer: Keypair,
	me: AccountId32,
	/// The datanets named on the command line; empty for every datanet served.
	named: Vec<u32>,
	/// Each datanet's near-duplicate index, opened when first needed.
	indexes: HashMap<u32, Index>,
	/// The datanets the records below were read for.
	serving: BTreeSet<u32>,
	/// The first contribution not read yet; `None` until all have been read once.
	cursor: Option<u64>,
	/// Contributions of those datanets that were pending when last read.
	pending: BTreeSet<u64>,
	/// Contributions of those datanets that were rejected: no longer near-duplicate targets.
	rejected: HashSet<u64>,
	/// Files whose saved vote went missing before the reveal, reported once.
	lost: HashSet<u64>,
	/// Commits sent, by contribution.
	commits_sent: HashMap<u64, u32>,
	/// When a close was last sent, by contribution.
	closing: HashMap<u64, u32>,
}

impl AutoArgs {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let signer = context.signer(&self.from)?;
		let mut worker = Worker {
			client: context.connect().await?,
			rpc: provenant_client::rpc_client(&context.url).await?,
			me: signer.public_key().to_account_id(),
			signer,
			named: self.datanets,
			indexes: HashMap::new(),
			serving: BTreeSet::new(),
			cursor: None,
			pending: BTreeSet::new(),
			rejected: HashSet::new(),
			lost: HashSet::new(),
			commits_sent: HashMap::new(),
			closing: HashMap::new(),
		};
		let datanets = worker.datanets().await?;
		context.emit(
			format!("judging datanets {datanets:?} as {}", worker.me),
			json!({ "event": "started", "datanets": datanets }),
		);
		loop {
			if let Err(err) = worker.round(context).await {
				context.emit(
					format!("round failed: {err:#}"),
					json!({ "event": "error", "error": format!("{err:#}") }),
				);
			}
			tokio::time::sleep(Duration::from_secs(self.interval)).await;
		}
	}
}

impl Worker {
	/// The datanets to judge this round: the named ones, which the validator must serve, or
	/// every one it serves.
	async fn datanets(&self) -> Result<BTreeSet<u32>> {
		let me = self.me;
		let served: BTreeSet<u32> = self
			.client
			.at_current_block()
			.await?
			.storage()
			.try_fetch(runtime::storage().validation().validators(), (me,))
			.await?
			.ok_or_else(|| anyhow!("{me} has no stake; run `provenant validator bond` first"))?
			.decode()?
			.datanets
			.0
			.into_iter()
			.collect();
		if self.named.is_empty() {
			if served.is_empty() {
				bail!("{me} serves no datanet; bond for one with `provenant validator bond`");
			}
			return Ok(served);
		}
		for datanet in &self.named {
			if !served.contains(datanet) {
				bail!(
					"{me} does not serve datanet {datanet}; bond for it with `--datanet {datanet}`"
				);
			}
		}
		Ok(self.named.iter().copied().collect())
	}

	/// This validator's commit on `id`, with its ballot once revealed.
	async fn my_commit(&self, id: u64) -> Result<Option<Option<Ballot>>> {
		Ok(self
			.client
			.at_current_block()
			.await?
			.storage()
			.try_fetch(runtime::storage().validation().commits(), (id, self.me))
			.await?
			.map(|value| value.decode())
			.transpose()?
			.map(|record| record.revealed.map(|ballot| ballot.0)))
	}

	async fn fetch(&self, hash: [u8; 32]) -> Result<Vec<u8>> {
		provenant_client::fetch_content(&self.rpc, &hash)
			.await
			.with_context(|| format!("fetching 0x{}", hex::encode(hash)))
	}

	/// `datanet`'s near-duplicate index, beside the keystore, under the chain's genesis hash
	/// (a new dev chain numbers its datanets and files from zero again).
	fn index(&mut self, context: &Context, datanet: u32) -> Result<&mut Index> {
		if !self.indexes.contains_key(&datanet) {
			let dir = context.keystore_path.parent().map(PathBuf::from).unwrap_or_default();
			let chain = hex::encode(&self.client.genesis_hash().0[..8]);
			let path = dir.join("validator").join(chain).join(self.me.to_string());
			let path = path.join(format!("datanet-{datanet}.index"));
			let index =
				Index::open(&path).with_context(|| format!("opening {}", path.display()))?;
			self.indexes.insert(datanet, index);
		}
		Ok(self.indexes.get_mut(&datanet).expect("inserted above"))
	}

	/// The vote on `id`: the saved one if this worker already judged it, else a new judgment
	/// against the datanet's earlier files that were not rejected, saved before anything is
	/// sent.
	async fn vote(
		&mut self,
		context: &Context,
		(id, record): (u64, &Record),
		rejected: &HashSet<u64>,
		saved: &Path,
	) -> Result<(Ballot, Salt, String)> {
		if let Some((ballot, salt)) = votes::load(saved)? {
			return Ok((ballot, salt, "sent again".into()));
		}
		let bytes = self.fetch(record.hash).await?;
		let index = self.index(context, record.datanet)?;
		let earlier = |other: u64| other < id && !rejected.contains(&other);
		let (ballot, fingerprint, why) =
			provenant_quality::judge_with(record.format.0, &bytes, |fingerprint| {
				index.near_duplicate_of(fingerprint, earlier)
			});
		index.insert(id, fingerprint)?;
		let mut salt: Salt = [0u8; 32];
		getrandom::getrandom(&mut salt).map_err(|e| anyhow!("no randomness: {e}"))?;
		votes::save(saved, &ballot, &salt)?;
		Ok((ballot, salt, why))
	}

	/// This round's records of the datanets served: those new since the last round and those
	/// pending then, in id order. The first round, and a round after the datanets changed,
	/// reads every record once; later rounds read only new and pending ones, so a round does
	/// not grow with the datanets.
	async fn records(&mut self, datanets: &BTreeSet<u32>) -> Result<Vec<(u64, Record)>> {
		let contributions = runtime::storage().datanets().contributions();
		if *datanets != self.serving {
			self.serving = datanets.clone();
			self.cursor = None;
			self.pending.clear();
		}
		let at = self.client.at_current_block().await?;
		let next: u64 = at
			.storage()
			.entry(runtime::storage().datanets().next_contribution_id())?
			.fetch(())
			.await?
			.decode()?;
		let mut records = match self.cursor {
			None => chain::all(&self.client, contributions.clone()).await?,
			Some(first) => {
				let mut fresh = Vec::new();
				for id in first..next {
					if let Some(value) = at.storage().try_fetch(&contributions, (id,)).await? {
						fresh.push((id, value.decode()?));
					}
				}
				fresh
			},
		};
		let read_to = records.iter().map(|(id, _)| id + 1).max().unwrap_or(0);
		self.cursor = Some(next.max(read_to));
		for id in std::mem::take(&mut self.pending) {
			if let Some(value) = at.storage().try_fetch(&contributions, (id,)).await? {
				records.push((id, value.decode()?));
			}
		}
		records.retain(|(_, record)| datanets.contains(&record.datanet));
		records.sort_by_key(|(id, _)| *id);
		records.dedup_by_key(|(id, _)| *id);
		for (id, record) in &records {
			match record.status.0 {
				ContributionStatus::Pending => {
					self.pending.insert(*id);
				},
				ContributionStatus::Rejected => {
					self.rejected.insert(*id);
				},
				_ => {},
			}
		}
		let pending = &self.pending;
		self.commits_sent.retain(|id, _| pending.contains(id));
		self.closing.retain(|id, _| pending.contains(id));
		self.lost.retain(|id| pending.contains(id));
		Ok(records)
	}

	async fn round(&mut self, context: &Context) -> Result<()> {
		let datanets = self.datanets().await?;
		let rules = chain::validation_params(&self.client).await?;
		let now = chain::block_number(&self.client).await?;
		let records = self.records(&datanets).await?;
		let rejected = self.rejected.clone();

		let mut planned = Vec::new();
		for (id, record) in records {
			let status = record.status.0;
			if status == ContributionStatus::Rejected {
				continue;
			}
			let commit_end = record.block + rules.commit_period;
			let reveal_end = commit_end + rules.reveal_period;
			let saved = votes::path(context, id, &self.me);
			let pending = status == ContributionStatus::Pending;
			// Commit while the commit window has a block to spare for inclusion.
			let contributor = AccountId32::from(record.contributor.0);
			let sent = self.commits_sent.get(&id).copied().unwrap_or(0);
			let may_commit =
				pending && contributor != self.me && now < commit_end && sent < COMMIT_ATTEMPTS;
			if may_commit && self.my_commit(id).await?.is_none() {
				self.commits_sent.insert(id, sent + 1);
				let (ballot, salt, why) =
					self.vote(context, (id, &record), &rejected, &saved).await?;
				let sealed = pallet_validation::commitment(&ballot, &salt, &self.me.0);
				let line = format!("#{id}: committed {}: {why}", ballot_name(&ballot));
				planned.push(Planned::Commit { id, sealed, line });
			}
			if !self.index(context, record.datanet)?.contains(id) {
				let bytes = self.fetch(record.hash).await?;
				let fingerprint = provenant_quality::inspect(record.format.0, &bytes)
					.unwrap_or(Fingerprint::None);
				self.index(context, record.datanet)?.insert(id, fingerprint)?;
			}
			if !pending || now > reveal_end {
				// The vote is over: a saved ballot has nothing left to do.
				std::fs::remove_file(&saved).ok();
			}
			if !pending {
				continue;
			}
			if now > commit_end && now <= reveal_end {
				if let Some(None) = self.my_commit(id).await? {
					match votes::load(&saved)? {
						Some((ballot, salt)) => {
							planned.push(Planned::Reveal { id, ballot, salt, saved })
						},
						None if self.lost.insert(id) => context.emit(
							format!("#{id}: committed, but its saved vote is gone: cannot reveal"),
							json!({ "event": "lost", "contribution": id }),
						),
						None => {},
					}
				}
			}
			// Anyone may close; a worker that loses the race to another pays only a fee. A
			// close that did not land is sent again a few blocks later.
			if now > reveal_end && self.closing.get(&id).is_none_or(|sent| now > sent + 3) {
				self.closing.insert(id, now);
				planned.push(Planned::Close { id });
			}
		}
		if planned.is_empty() {
			return Ok(());
		}
		let first = provenant_client::next_nonce(&self.rpc, &self.me).await?;
		let sends: Vec<Action> = planned
			.into_iter()
			.zip(first..)
			.map(|(plan, nonce)| plan.send(&self.client, &self.signer, nonce))
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
