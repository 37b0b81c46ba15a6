//! The records the pallet keeps: base models, jobs, their training sets and results, workers.

use crate::frame_support::{pallet_prelude::ConstU32, BoundedVec};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use pallet_datanets::{ContributionId, DatanetId};
use polkadot_sdk::sp_runtime::Perbill;
use provenant_jobspec::{Family, HyperParams};
use scale_info::TypeInfo;

pub use pallet_datanets::ContentHash;

/// A base model's identifier, assigned in registration order from 0.
pub type ModelId = u32;
/// A job's identifier, assigned in creation order from 0.
pub type JobId = u64;
/// A sha256 digest: how model files and adapters are named off chain (`sha256sum`).
pub type Sha256 = [u8; 32];
/// A Merkle root or node (blake2-256).
pub type Hash32 = [u8; 32];

/// A name or other short text, in UTF-8.
pub type Name = BoundedVec<u8, ConstU32<64>>;
/// A licence or source: an SPDX id, a URL, a paper.
pub type Text = BoundedVec<u8, ConstU32<256>>;
/// The weight files of a model (one per shard).
pub type WeightFiles = BoundedVec<Sha256, ConstU32<64>>;
/// The datanets a job trains on.
pub type JobDatanets = BoundedVec<DatanetId, ConstU32<8>>;
/// The parts of a training set, one per datanet.
pub type SetParts = BoundedVec<SetPart, ConstU32<8>>;
/// An adapter's `adapter_config.json`.
pub type AdapterConfig = BoundedVec<u8, ConstU32<4096>>;

/// A registered base model.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct BaseModel<AccountId, Balance> {
	/// Who registered it; only they can retire it.
	pub owner: AccountId,
	/// Its architecture family.
	pub family: Family,
	/// A name people recognise, e.g. `SmolLM2-135M-Instruct`.
	pub name: Name,
	/// The sha256 of each weights file (a GGUF file, or every safetensors shard).
	pub weights: WeightFiles,
	/// The sha256 of `tokenizer.json` (of the GGUF file itself when it carries the
	/// tokenizer).
	pub tokenizer: Sha256,
	/// The most positions it attends over: a job's cutoff length may not exceed it.
	pub max_positions: u32,
	/// Its licence.
	pub licence: Text,
	/// Where it comes from.
	pub source: Text,
	/// The deposit held from the owner for this record.
	pub deposit: Balance,
	/// Retired models take no new jobs; their jobs are unaffected.
	pub retired: bool,
}

/// One datanet's part of a training set: its first `count` accepted contributions.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub struct SetPart {
	/// The datanet.
	pub datanet: DatanetId,
	/// How many of its accepted contributions, in log order, are in the set.
	pub count: u64,
	/// The root of its log at `count` ([`crate::merkle::root`]).
	pub root: Hash32,
}

/// The training set the chain fixed when a job was created.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct TrainingSet {
	/// One part per datanet, in increasing datanet order.
	pub parts: SetParts,
	/// [`crate::merkle::set_root`] of the parts: what a worker's commit must repeat.
	pub root: Hash32,
	/// Contributions in the set.
	pub size: u64,
}

/// Where a job stands.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub enum JobState<AccountId, BlockNumber> {
	/// Waiting for a worker.
	Open,
	/// A worker holds the lease until `until` (inclusive).
	Claimed {
		/// The worker.
		worker: AccountId,
		/// The last block of the lease.
		until: BlockNumber,
	},
	/// Done: the result is in `Results`, and nothing about the job changes again.
	Committed {
		/// The worker who trained it.
		worker: AccountId,
	},
	/// The creator took it back before anyone claimed it.
	Cancelled,
}

impl<AccountId, BlockNumber> JobState<AccountId, BlockNumber> {
	/// The state without its details.
	pub fn status(&self) -> JobStatus {
		match self {
			JobState::Open => JobStatus::Open,
			JobState::Claimed { .. } => JobStatus::Claimed,
			JobState::Committed { .. } => JobStatus::Committed,
			JobState::Cancelled => JobStatus::Cancelled,
		}
	}
}

/// A job's state without its details, for listing jobs by state.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub enum JobStatus {
	/// Waiting for a worker.
	Open,
	/// A worker holds the lease.
	Claimed,
	/// Done.
	Committed,
	/// Taken back by its creator.
	Cancelled,
}

/// A fine-tuning job.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct Job<AccountId, Balance, BlockNumber> {
	/// Who ordered it and paid the fee.
	pub creator: AccountId,
	/// The base model.
	pub model: ModelId,
	/// Every hyper-parameter, as [`provenant_jobspec::check`] admitted them.
	pub params: HyperParams,
	/// The fee, held in escrow until the commit pays it out.
	pub fee: Balance,
	/// The data, fixed at creation.
	pub training: TrainingSet,
	/// The block it was created in.
	pub created: BlockNumber,
	/// Where it stands.
	pub state: JobState<AccountId, BlockNumber>,
}

/// The adapter a worker published for a job: its weights file is in the transaction index.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct PublishedAdapter<AccountId> {
	/// The worker who published it.
	pub worker: AccountId,
	/// sha256 of `adapter_model.safetensors`.
	pub sha256: Sha256,
	/// Its size in bytes.
	pub size: u32,
	/// Its blake2-256: the key the content RPC serves it under.
	pub content: ContentHash,
	/// `adapter_config.json`, verbatim.
	pub config: AdapterConfig,
}

/// What a worker reports when it commits a job.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct Outcome {
	/// sha256 of `adapter_model.safetensors`; must be the published adapter's.
	pub adapter: Sha256,
	/// Its size in bytes.
	pub adapter_size: u32,
	/// The training set's root; must be the job's.
	pub training_root: Hash32,
	/// Mean training loss of the last step, in millionths of a nat.
	pub train_loss: u32,
	/// Loss on the held-out split, in millionths of a nat, if one was held out.
	pub eval_loss: Option<u32>,
	/// Tokens trained on.
	pub tokens: u64,
	/// Optimiser steps taken.
	pub steps: u32,
	/// The root over the contributors' shares, [`crate::merkle::share_leaf`] in training-set
	/// order.
	pub shares_root: Hash32,
	/// How the shares were decided.
	pub attribution: Attribution,
}

/// What the weights of attributed shares add up to: one, in parts per billion.
pub const SHARES_WHOLE: u64 = 1_000_000_000;

/// How a job's contributor shares were decided, with what anyone needs to recompute them. In
/// JSON (the RPC's), `{"method": "tokens"}` or `{"method": "influence", "projectionDim": …}`.
#[derive(
	serde::Serialize,
	serde::Deserialize,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
#[serde(tag = "method", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Attribution {
	/// Each contribution weighs its tokens in the training set.
	Tokens,
	/// Training-time influence on the job's held-out contributions: in-run TracIn over each
	/// trained contribution's part of every step's LoRA gradient, preconditioned by Adam's
	/// second moment and projected by a seeded CountSketch. Weights are shares in parts per
	/// billion and add up to exactly [`SHARES_WHOLE`]; a contribution of no or negative
	/// influence gets none.
	Influence {
		/// Numbers each gradient was projected to.
		projection_dim: u32,
		/// Seed of the projection.
		projection_seed: u64,
		/// Times the probes' gradient was taken, evenly spaced from the first step.
		checkpoints: u32,
		/// Probe examples (from the held-out contributions) the influence was measured on.
		probes: u32,
	},
}

/// A contribution's weight in the contributors' part of the fee: its tokens in the training
/// set, or its attributed share in parts per billion, as the outcome's [`Attribution`] says.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub struct Share {
	/// The contribution.
	pub contribution: ContributionId,
	/// Its weight.
	pub weight: u64,
}

/// How a job's fee is split when it is committed. The parts add up to 100%.
#[derive(
	serde::Serialize,
	serde::Deserialize,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
#[serde(rename_all = "camelCase")]
pub struct FeeSplit {
	/// To the worker who trained it.
	pub trainer: Perbill,
	/// To the datanets' reward pools, in proportion to their contributions in the set.
	pub pools: Perbill,
	/// To the contributors of the training set, by their shares.
	pub contributors: Perbill,
}

impl FeeSplit {
	/// Whether the parts add up to exactly 100%.
	pub fn is_whole(&self) -> bool {
		let parts = [self.trainer, self.pools, self.contributors];
		parts.iter().map(|part| u64::from(part.deconstruct())).sum::<u64>()
			== u64::from(Perbill::one().deconstruct())
	}
}

/// What a fee paid, by part: a job's fee when it is committed, or a payment for its use.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Paid<Balance> {
	/// Onto the trainer's claimable balance.
	pub trainer: Balance,
	/// Into the datanets' pools.
	pub pools: Balance,
	/// Onto the contributors' claimable balances, by their shares.
	pub contributors: Balance,
}

/// A trainer worker's bond and claims.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Default,
)]
pub struct WorkerInfo<Balance> {
	/// Held from the worker.
	pub bond: Balance,
	/// Jobs it holds a lease on.
	pub claims: u32,
}

/// One entry of a datanet's log of accepted contributions.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub struct LogEntry {
	/// The contribution.
	pub contribution: ContributionId,
	/// blake2-256 of its bytes.
	pub content: ContentHash,
}

impl LogEntry {
	/// Its leaf in the datanet's tree.
	pub fn leaf(&self) -> Hash32 {
		crate::merkle::leaf(self.contribution, &self.content)
	}
}

/// A training-set member with its place in the set, as the runtime API lists them.
#[derive(Encode, Decode, TypeInfo, Clone, PartialEq, Eq, Debug)]
pub struct SetMember {
	/// The datanet.
	pub datanet: DatanetId,
	/// Its position in the datanet's log.
	pub index: u64,
	/// The contribution and its content hash.
	pub entry: LogEntry,
}

/// Proof that a contribution is in a job's training set.
#[derive(Encode, Decode, TypeInfo, Clone, PartialEq, Eq, Debug)]
pub struct InclusionProof {
	/// The member.
	pub member: SetMember,
	/// The siblings from its leaf to its datanet's root at the job's count.
	pub siblings: alloc::vec::Vec<Hash32>,
}

impl InclusionProof {
	/// Whether the proof leads to the part of `training` for its datanet, and the parts to
	/// the set's root.
	pub fn verify(&self, training: &TrainingSet) -> bool {
		let Some(part) = training.parts.iter().find(|part| part.datanet == self.member.datanet)
		else {
			return false;
		};
		self.member.index < part.count
			&& crate::merkle::fold_proof(
				self.member.entry.leaf(),
				self.member.index,
				&self.siblings,
			) == part.root
			&& crate::merkle::set_root(&training.parts) == training.root
	}
}
