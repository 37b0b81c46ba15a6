//! What every command shares to talk to the chain: signing and submitting, reading one record
//! at the latest block, and the words the CLI prints for the chain's kinds and statuses.
//!
//! The chain's kinds, formats, statuses and ballots are the pallets' own types (the client
//! substitutes them for their generated copies), so no command converts between the two.

use anyhow::{anyhow, Context as _, Result};
use pallet_datanets::{ContributionStatus, DataKind, DatanetStatus, Format};
use pallet_validation::Ballot;
use provenant_client::{
	runtime::{
		self,
		runtime_types::{
			pallet_datanets::pallet::DatanetInfo, pallet_models::types::BaseModel,
			pallet_models_runtime_api::JobDetails, pallet_validation::types::Params,
		},
	},
	subxt::{
		ext::scale_decode::IntoVisitor,
		extrinsics::ExtrinsicEvents,
		storage::{Address, PrefixOf},
		transactions::Payload,
		utils::AccountId32,
	},
	Client, ProvenantConfig,
};

use crate::context::Context;

/// The events of a finalized transaction.
pub(crate) type Events = ExtrinsicEvents<ProvenantConfig>;

/// Signs `call` as `from` (a key name or dev URI), waits for finality, and returns its events.
pub(crate) async fn submit<Call: Payload>(
	context: &Context,
	client: &Client,
	from: &str,
	call: &Call,
) -> Result<Events> {
	let signer = context.signer(from)?;
	// The pool's next nonce, not the finalized block's: a transaction of this account still
	// waiting for finality (an earlier command, Studio, another process) is not clashed with.
	let rpc = provenant_client::rpc_client(&context.url).await?;
	Ok(provenant_client::submit_and_finalize_from_pool(client, &rpc, call, &signer).await?)
}

/// The latest block's number.
pub(crate) async fn block_number(client: &Client) -> Result<u32> {
	Ok(client.at_current_block().await?.block_number() as u32)
}

/// The value at `key` of a map keyed by one number, or `missing`'s message.
async fn one<Addr, Key>(
	client: &Client,
	map: Addr,
	key: Key,
	missing: String,
) -> Result<Addr::Value>
where
	Addr: Address<KeyParts = (Key,)>,
{
	client
		.at_current_block()
		.await?
		.storage()
		.try_fetch(map, (key,))
		.await?
		.map(|value| value.decode())
		.transpose()?
		.ok_or_else(|| anyhow!(missing))
}

/// Every entry of a map keyed by one number, in key order.
pub(crate) async fn all<Addr, Key>(client: &Client, map: Addr) -> Result<Vec<(Key, Addr::Value)>>
where
	Addr: Address<KeyParts = (Key,)>,
	(): PrefixOf<(Key,)>,
	Key: Ord + IntoVisitor,
{
	let at = client.at_current_block().await?;
	let mut entries = at.storage().iter(map, ()).await?;
	let mut rows = Vec::new();
	while let Some(entry) = entries.next().await {
		let entry = entry?;
		let (key,) = entry.key()?.decode()?;
		rows.push((key, entry.value().decode()?));
	}
	rows.sort_by(|(a, _), (b, _)| a.cmp(b));
	Ok(rows)
}

/// Datanet `id`.
pub(crate) async fn datanet(client: &Client, id: u32) -> Result<DatanetInfo> {
	one(client, runtime::storage().datanets().datanets(), id, format!("there is no datanet {id}"))
		.await
}

/// Base model `id`.
pub(crate) async fn model(client: &Client, id: u32) -> Result<BaseModel<AccountId32, u128>> {
	let missing = format!("there is no model {id}: `provenant model list` shows them");
	one(client, runtime::storage().models().base_models(), id, missing).await
}

/// Everything the chain holds about job `id`, through the runtime API.
pub(crate) async fn job(client: &Client, id: u64) -> Result<JobDetails<AccountId32, u128, u32>> {
	client
		.at_current_block()
		.await?
		.runtime_apis()
		.call(runtime::runtime_apis().models_api().job(id))
		.await?
		.ok_or_else(|| anyhow!("there is no job {id}: `provenant job list` shows them"))
}

/// Validation's rules now.
pub(crate) async fn validation_params(client: &Client) -> Result<Params<u128, u32>> {
	Ok(client
		.at_current_block()
		.await?
		.storage()
		.entry(runtime::storage().validation().current_params())?
		.fetch(())
		.await?
		.decode()?)
}

/// The stored bytes whose blake2-256 is `wanted`, re-hashed: a node that returns other bytes
/// is named as untrustworthy.
pub(crate) async fn content(context: &Context, wanted: &[u8; 32]) -> Result<Vec<u8>> {
	let rpc = provenant_client::rpc_client(&context.url)
		.await
		.with_context(|| format!("cannot reach a Provenant node at {}", context.url))?;
	Ok(provenant_client::fetch_content(&rpc, wanted).await?)
}

/// `text`, `image` or `audio`.
pub(crate) fn kind_name(kind: DataKind) -> &'static str {
	match kind {
		DataKind::Text => "text",
		DataKind::Image => "image",
		DataKind::Audio => "audio",
	}
}

/// The names of the formats in a format set's bits.
pub(crate) fn format_names(set: u16) -> Vec<String> {
	Format::ALL.into_iter().filter(|f| set & f.bit() != 0).map(|f| f.name().to_string()).collect()
}

/// `active`, `paused` or `closed`.
pub(crate) fn datanet_status_name(status: DatanetStatus) -> &'static str {
	match status {
		DatanetStatus::Active => "active",
		DatanetStatus::Paused => "paused",
		DatanetStatus::Closed => "closed",
	}
}

/// `pending`, `accepted`, `rejected` or `expired`.
pub(crate) fn contribution_status_name(status: ContributionStatus) -> &'static str {
	match status {
		ContributionStatus::Pending => "pending",
		ContributionStatus::Accepted => "accepted",
		ContributionStatus::Rejected => "rejected",
		ContributionStatus::Expired => "expired",
	}
}

/// `accept`, or `reject` with its reason.
pub(crate) fn ballot_name(ballot: &Ballot) -> String {
	match ballot {
		Ballot::Accept => "accept".into(),
		Ballot::Reject(reason) => format!("reject ({})", reason.name()),
	}
}

/// Bytes the chain stores as text (names, summaries, licences), shown even if not UTF-8.
pub(crate) fn text(bytes: &[u8]) -> String {
	String::from_utf8_lossy(bytes).into_owned()
}
