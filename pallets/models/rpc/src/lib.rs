//! # Models RPC
//!
//! - `models_job(job, at?)`: a job, its state, its training set's root and parts, and once
//!   committed its adapter, result and shares.
//! - `models_jobs(status?, model?, start?, limit?, at?)`: jobs in id order, optionally only
//!   those in one state (`open`, `claimed`, `committed`, `cancelled`) or of one base model.
//! - `models_trainingSet(job, start?, limit?, at?)`: a job's training set, in set order.
//! - `models_inclusionProof(job, contribution, at?)`: the Merkle proof that a contribution is in
//!   a job's training set, checked here against the job's root; `null` when it is not a member.
//! - `models_jobByAdapter(sha256, at?)`: the committed job whose adapter weights have this
//!   sha256.
//!
//! Hashes are `0x`-hex, balances decimal strings in the chain's smallest unit, and fractions
//! (learning rate, dropout, losses) plain numbers.

use std::{fmt::Display, marker::PhantomData, sync::Arc};

use codec::Codec;
use jsonrpsee::{
	core::RpcResult,
	proc_macros::rpc,
	types::error::{ErrorObject, ErrorObjectOwned},
};
use pallet_models::{InclusionProof, JobState, JobStatus, SetMember, TrainingSet};
use pallet_models_runtime_api::JobDetails;
pub use pallet_models_runtime_api::ModelsApi as ModelsRuntimeApi;
use polkadot_sdk::{
	sp_api::ProvideRuntimeApi, sp_blockchain::HeaderBackend, sp_core::H256,
	sp_runtime::traits::Block as BlockT,
};
use provenant_jobspec::{HyperParams, MICRO, NANO};
use serde::{Deserialize, Serialize};

/// The longest page served.
pub const MAX_LIMIT: u32 = 1000;
/// The page length when none is given.
pub const DEFAULT_LIMIT: u32 = 100;

/// Error codes of this RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
	/// The runtime call failed.
	RuntimeError,
	/// A parameter is out of range or unknown.
	InvalidParams,
	/// The named job does not exist.
	UnknownJob,
}

impl Error {
	/// The JSON-RPC error code.
	pub const fn code(self) -> i32 {
		match self {
			Error::RuntimeError => 4302,
			Error::InvalidParams => 4304,
			Error::UnknownJob => 4305,
		}
	}

	fn with(self, message: impl Into<String>) -> ErrorObjectOwned {
		ErrorObject::owned(self.code(), message.into(), None::<()>)
	}
}

fn runtime_error(error: impl Display) -> ErrorObjectOwned {
	Error::RuntimeError.with(format!("runtime call failed: {error}"))
}

/// A job's hyper-parameters, fractions as numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
	/// `LoRA`, `QLoRA (4-bit)` or `QLoRA (8-bit)`.
	pub method: String,
	/// Peak learning rate.
	pub learning_rate: f64,
	/// Passes over the training set.
	pub epochs: u16,
	/// Blocks per micro-batch.
	pub batch_size: u16,
	/// Micro-batches per optimiser step.
	pub grad_accum: u16,
	/// Tokens per training block.
	pub cutoff_len: u32,
	/// Steps of linear warm-up.
	pub warmup_steps: u32,
	/// Decay after warm-up.
	pub schedule: String,
	/// AdamW's decoupled weight decay.
	pub weight_decay: f64,
	/// Gradient clipping norm.
	pub max_grad_norm: f64,
	/// Stop after this many optimiser steps.
	pub max_steps: Option<u32>,
	/// The adapter's rank.
	pub rank: u16,
	/// LoRA's α.
	pub alpha: u16,
	/// Dropout on the adapter's input.
	pub dropout: f64,
	/// Scale by α/√r.
	pub rslora: bool,
	/// The adapted modules, by their Hugging Face names.
	pub targets: Vec<String>,
	/// Seed of every random choice.
	pub seed: u64,
	/// The share of the training set held out for the eval loss.
	pub eval_fraction: f64,
}

impl From<&HyperParams> for Params {
	fn from(params: &HyperParams) -> Self {
		let nano = |value: u32| f64::from(value) / f64::from(NANO);
		let micro = |value: u32| f64::from(value) / f64::from(MICRO);
		Self {
			method: params.method.to_string(),
			learning_rate: nano(params.learning_rate),
			epochs: params.epochs,
			batch_size: params.batch_size,
			grad_accum: params.grad_accum,
			cutoff_len: params.cutoff_len,
			warmup_steps: params.warmup_steps,
			schedule: format!("{:?}", params.schedule).to_lowercase(),
			weight_decay: nano(params.weight_decay),
			max_grad_norm: nano(params.max_grad_norm),
			max_steps: params.max_steps,
			rank: params.rank,
			alpha: params.alpha,
			dropout: micro(params.dropout),
			rslora: params.rslora,
			targets: params.targets.iter().map(|module| module.name().to_string()).collect(),
			seed: params.seed,
			eval_fraction: micro(params.eval_fraction),
		}
	}
}

/// One datanet's part of a training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
	/// The datanet.
	pub datanet: u32,
	/// Its first `count` accepted contributions are in the set.
	pub count: u64,
	/// The root of its log's tree at `count`.
	pub root: H256,
}

/// A job as the chain holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job<AccountId, BlockNumber> {
	/// Its identifier.
	pub id: u64,
	/// Who ordered it.
	pub creator: AccountId,
	/// The base model.
	pub model: u32,
	/// `open`, `claimed`, `committed` or `cancelled`.
	pub state: String,
	/// The lease holder, or the worker who committed.
	pub worker: Option<AccountId>,
	/// The last block of the lease, while claimed.
	pub lease_until: Option<BlockNumber>,
	/// The fee in escrow (paid out once committed).
	pub fee: String,
	/// The block it was created in.
	pub created: BlockNumber,
	/// Its hyper-parameters.
	pub params: Params,
	/// The training set's root.
	pub training_root: H256,
	/// The training set's size.
	pub training_size: u64,
	/// The training set, per datanet.
	pub datanets: Vec<Part>,
}

impl<AccountId: Clone, BlockNumber: Clone> Job<AccountId, BlockNumber> {
	fn new<Balance: Display>(
		id: u64,
		job: pallet_models::Job<AccountId, Balance, BlockNumber>,
	) -> Self {
		let (state, worker, lease_until) = match job.state {
			JobState::Open => ("open", None, None),
			JobState::Claimed { worker, until } => ("claimed", Some(worker), Some(until)),
			JobState::Committed { worker } => ("committed", Some(worker), None),
			JobState::Cancelled => ("cancelled", None, None),
		};
		Self {
			id,
			creator: job.creator,
			model: job.model,
			state: state.into(),
			worker,
			lease_until,
			fee: job.fee.to_string(),
			created: job.created,
			params: Params::from(&job.params),
			training_root: H256(job.training.root),
			training_size: job.training.size,
			datanets: parts(&job.training),
		}
	}
}

fn parts(training: &TrainingSet) -> Vec<Part> {
	training
		.parts
		.iter()
		.map(|part| Part { datanet: part.datanet, count: part.count, root: H256(part.root) })
		.collect()
}

/// The adapter a worker published for a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Adapter<AccountId> {
	/// Who published it.
	pub worker: AccountId,
	/// sha256 of `adapter_model.safetensors`.
	pub sha256: H256,
	/// Its size in bytes.
	pub size: u32,
	/// Its blake2-256: `datanets_content` serves the bytes by it.
	pub content: H256,
	/// `adapter_config.json`, as text.
	pub config: String,
}

/// What the worker committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
	/// sha256 of the adapter's weights.
	pub adapter: H256,
	/// Their size in bytes.
	pub adapter_size: u32,
	/// The final training loss.
	pub train_loss: f64,
	/// The loss on the held-out split, if any.
	pub eval_loss: Option<f64>,
	/// Tokens trained on.
	pub tokens: u64,
	/// Optimiser steps.
	pub steps: u32,
	/// The root over (contribution, share) pairs.
	pub shares_root: H256,
	/// How the shares were decided.
	pub attribution: pallet_models::Attribution,
}

/// A contribution's share of a committed job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
	/// The contribution.
	pub contribution: u64,
	/// Its weight: tokens trained, or its share in parts per billion.
	pub weight: u64,
}

/// A job with its adapter, result and shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Details<AccountId, BlockNumber> {
	/// The job.
	#[serde(flatten)]
	pub job: Job<AccountId, BlockNumber>,
	/// The published adapter, if any.
	pub adapter: Option<Adapter<AccountId>>,
	/// The committed result, once committed.
	pub outcome: Option<Outcome>,
	/// The committed shares, in training-set order.
	pub shares: Vec<Share>,
}

impl<AccountId: Clone, BlockNumber: Clone> Details<AccountId, BlockNumber> {
	fn new<Balance: Display>(
		id: u64,
		details: JobDetails<AccountId, Balance, BlockNumber>,
	) -> Self {
		Self {
			job: Job::new(id, details.job),
			adapter: details.adapter.map(|adapter| Adapter {
				worker: adapter.worker,
				sha256: H256(adapter.sha256),
				size: adapter.size,
				content: H256(adapter.content),
				config: String::from_utf8_lossy(&adapter.config).into_owned(),
			}),
			outcome: details.outcome.map(|outcome| Outcome {
				adapter: H256(outcome.adapter),
				adapter_size: outcome.adapter_size,
				train_loss: f64::from(outcome.train_loss) / 1e6,
				eval_loss: outcome.eval_loss.map(|loss| f64::from(loss) / 1e6),
				tokens: outcome.tokens,
				steps: outcome.steps,
				shares_root: H256(outcome.shares_root),
				attribution: outcome.attribution,
			}),
			shares: details
				.shares
				.into_iter()
				.map(|share| Share { contribution: share.contribution, weight: share.weight })
				.collect(),
		}
	}
}

/// A member of a training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
	/// The contribution.
	pub contribution: u64,
	/// blake2-256 of its bytes.
	pub content: H256,
	/// Its datanet.
	pub datanet: u32,
	/// Its position in the datanet's log.
	pub index: u64,
}

impl From<SetMember> for Member {
	fn from(member: SetMember) -> Self {
		Self {
			contribution: member.entry.contribution,
			content: H256(member.entry.content),
			datanet: member.datanet,
			index: member.index,
		}
	}
}

/// A member with the path from its leaf to its datanet's root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
	/// The member.
	#[serde(flatten)]
	pub member: Member,
	/// The leaf: `pallet_models::merkle::leaf(contribution, content)`.
	pub leaf: H256,
	/// The siblings from the leaf up.
	pub siblings: Vec<H256>,
	/// Whether the proof leads to the job's training-set root (checked by this node).
	pub valid: bool,
}

fn parse_status(text: &str) -> RpcResult<JobStatus> {
	Ok(match text {
		"open" => JobStatus::Open,
		"claimed" => JobStatus::Claimed,
		"committed" => JobStatus::Committed,
		"cancelled" => JobStatus::Cancelled,
		other => {
			return Err(Error::InvalidParams.with(format!(
				"unknown state '{other}': use open, claimed, committed or cancelled"
			)))
		},
	})
}

fn limit(limit: Option<u32>) -> RpcResult<u32> {
	let limit = limit.unwrap_or(DEFAULT_LIMIT);
	if limit == 0 || limit > MAX_LIMIT {
		return Err(Error::InvalidParams
			.with(format!("limit must be between 1 and {MAX_LIMIT}, not {limit}")));
	}
	Ok(limit)
}

/// The models RPC methods.
#[rpc(client, server)]
pub trait ModelsApi<BlockHash, AccountId, BlockNumber> {
	/// Job `job` with its adapter, result and shares; `null` if there is none.
	#[method(name = "models_job")]
	fn job(
		&self,
		job: u64,
		at: Option<BlockHash>,
	) -> RpcResult<Option<Details<AccountId, BlockNumber>>>;

	/// Jobs from id `start` on, at most `limit`, optionally only in `status` or of `model`.
	#[method(name = "models_jobs")]
	fn jobs(
		&self,
		status: Option<String>,
		model: Option<u32>,
		start: Option<u64>,
		limit: Option<u32>,
		at: Option<BlockHash>,
	) -> RpcResult<Vec<Job<AccountId, BlockNumber>>>;

	/// Members of `job`'s training set from position `start`, at most `limit`.
	#[method(name = "models_trainingSet")]
	fn training_set(
		&self,
		job: u64,
		start: Option<u64>,
		limit: Option<u32>,
		at: Option<BlockHash>,
	) -> RpcResult<Vec<Member>>;

	/// The proof that `contribution` is in `job`'s training set; `null` when it is not.
	#[method(name = "models_inclusionProof")]
	fn inclusion_proof(
		&self,
		job: u64,
		contribution: u64,
		at: Option<BlockHash>,
	) -> RpcResult<Option<Proof>>;

	/// The committed job whose adapter weights have sha256 `adapter`.
	#[method(name = "models_jobByAdapter")]
	fn job_by_adapter(&self, adapter: H256, at: Option<BlockHash>) -> RpcResult<Option<u64>>;
}

/// Implements the models RPC over a client.
pub struct Models<C, Block, Balance> {
	client: Arc<C>,
	_marker: PhantomData<(Block, Balance)>,
}

impl<C, Block, Balance> Models<C, Block, Balance> {
	/// Serves the RPC from `client`.
	pub fn new(client: Arc<C>) -> Self {
		Self { client, _marker: PhantomData }
	}
}

impl<C, Block, Balance> Models<C, Block, Balance>
where
	Block: BlockT,
	C: ProvideRuntimeApi<Block>,
{
	/// Job `job` at `at`, or the error that names it as unknown.
	fn existing<AccountId, BlockNumber>(
		&self,
		at: Block::Hash,
		job: u64,
	) -> RpcResult<JobDetails<AccountId, Balance, BlockNumber>>
	where
		C::Api: ModelsRuntimeApi<Block, AccountId, Balance, BlockNumber>,
		AccountId: Codec,
		Balance: Codec,
		BlockNumber: Codec,
	{
		self.client
			.runtime_api()
			.job(at, job)
			.map_err(runtime_error)?
			.ok_or_else(|| Error::UnknownJob.with(format!("there is no job {job}")))
	}
}

impl<C, Block, AccountId, Balance, BlockNumber>
	ModelsApiServer<<Block as BlockT>::Hash, AccountId, BlockNumber> for Models<C, Block, Balance>
where
	Block: BlockT,
	C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync + 'static,
	C::Api: ModelsRuntimeApi<Block, AccountId, Balance, BlockNumber>,
	AccountId: Codec + Clone + Serialize + Send + Sync + 'static,
	Balance: Codec + Display + Send + Sync + 'static,
	BlockNumber: Codec + Clone + Serialize + Send + Sync + 'static,
{
	fn job(
		&self,
		job: u64,
		at: Option<<Block as BlockT>::Hash>,
	) -> RpcResult<Option<Details<AccountId, BlockNumber>>> {
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		let details = self.client.runtime_api().job(at, job).map_err(runtime_error)?;
		Ok(details.map(|details| Details::new(job, details)))
	}

	fn jobs(
		&self,
		status: Option<String>,
		model: Option<u32>,
		start: Option<u64>,
		limit: Option<u32>,
		at: Option<<Block as BlockT>::Hash>,
	) -> RpcResult<Vec<Job<AccountId, BlockNumber>>> {
		let status = status.as_deref().map(parse_status).transpose()?;
		let limit = self::limit(limit)?;
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		let jobs = self
			.client
			.runtime_api()
			.jobs(at, status, model, start.unwrap_or(0), limit)
			.map_err(runtime_error)?;
		Ok(jobs.into_iter().map(|(id, job)| Job::new(id, job)).collect())
	}

	fn training_set(
		&self,
		job: u64,
		start: Option<u64>,
		limit: Option<u32>,
		at: Option<<Block as BlockT>::Hash>,
	) -> RpcResult<Vec<Member>> {
		let limit = self::limit(limit)?;
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		self.existing(at, job)?;
		let members = self
			.client
			.runtime_api()
			.training_set(at, job, start.unwrap_or(0), limit)
			.map_err(runtime_error)?;
		Ok(members.into_iter().map(Member::from).collect())
	}

	fn inclusion_proof(
		&self,
		job: u64,
		contribution: u64,
		at: Option<<Block as BlockT>::Hash>,
	) -> RpcResult<Option<Proof>> {
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		let details = self.existing(at, job)?;
		let proof = self
			.client
			.runtime_api()
			.inclusion_proof(at, job, contribution)
			.map_err(runtime_error)?;
		Ok(proof.map(|proof: InclusionProof| Proof {
			valid: proof.verify(&details.job.training),
			leaf: H256(proof.member.entry.leaf()),
			siblings: proof.siblings.iter().map(|sibling| H256(*sibling)).collect(),
			member: Member::from(proof.member),
		}))
	}

	fn job_by_adapter(
		&self,
		adapter: H256,
		at: Option<<Block as BlockT>::Hash>,
	) -> RpcResult<Option<u64>> {
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		self.client.runtime_api().job_by_adapter(at, adapter.0).map_err(runtime_error)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use provenant_jobspec::Family;

	#[test]
	fn params_read_as_the_trainer_takes_them() {
		let params = Params::from(&HyperParams::defaults(Family::Llama));
		let json = serde_json::to_value(&params).unwrap();
		assert_eq!(json["method"], "LoRA");
		assert!((params.learning_rate - 2e-4).abs() < 1e-12, "{}", params.learning_rate);
		let targets: Vec<&str> =
			Family::Llama.default_targets().iter().map(|module| module.name()).collect();
		assert_eq!(json["targets"], serde_json::json!(targets));
		assert!(json.get("evalFraction").is_some(), "{json}");
	}

	#[test]
	fn states_and_limits_are_checked_with_the_allowed_values_named() {
		assert_eq!(parse_status("committed").unwrap(), JobStatus::Committed);
		let error = parse_status("done").unwrap_err();
		assert!(error.message().contains("open, claimed, committed or cancelled"));
		assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
		assert!(limit(Some(0)).unwrap_err().message().contains("between 1 and 1000"));
		assert!(limit(Some(MAX_LIMIT + 1)).is_err());
	}
}
