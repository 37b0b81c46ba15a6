//! Runtime API of the models pallet: a job with its adapter and result, jobs by state and
//! model, a job's training set in pages, inclusion proofs, and the job of an adapter. `provenant
//! verify` and the worker read the chain through it.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::{Codec, Decode, Encode};
pub use pallet_models::{
	InclusionProof, Job, JobId, JobStatus, ModelId, Outcome, PublishedAdapter, SetMember, Sha256,
	Share,
};
use scale_info::TypeInfo;

/// Everything the chain holds about one job.
#[derive(Encode, Decode, TypeInfo, Clone, PartialEq, Eq, Debug)]
pub struct JobDetails<AccountId, Balance, BlockNumber> {
	/// The job.
	pub job: Job<AccountId, Balance, BlockNumber>,
	/// The adapter its current (or last) worker published, if any.
	pub adapter: Option<PublishedAdapter<AccountId>>,
	/// The committed result, once committed.
	pub outcome: Option<Outcome>,
	/// The committed shares, once committed, in training-set order.
	pub shares: Vec<Share>,
}

polkadot_sdk::sp_api::decl_runtime_apis! {
	/// Read access to models, jobs and their provenance.
	pub trait ModelsApi<AccountId, Balance, BlockNumber>
	where
		AccountId: Codec,
		Balance: Codec,
		BlockNumber: Codec,
	{
		/// Job `job` with its adapter, result and shares.
		fn job(job: JobId) -> Option<JobDetails<AccountId, Balance, BlockNumber>>;

		/// Jobs from `start` on, optionally only those in `status` or of `model`, at most
		/// `limit`.
		fn jobs(
			status: Option<JobStatus>,
			model: Option<ModelId>,
			start: JobId,
			limit: u32,
		) -> Vec<(JobId, Job<AccountId, Balance, BlockNumber>)>;

		/// Members of `job`'s training set from position `start`, at most `limit`, in set order.
		fn training_set(job: JobId, start: u64, limit: u32) -> Vec<SetMember>;

		/// Proof that `contribution` is in `job`'s training set; `None` when it is not.
		fn inclusion_proof(job: JobId, contribution: u64) -> Option<InclusionProof>;

		/// The committed job whose adapter weights have sha256 `adapter`.
		fn job_by_adapter(adapter: Sha256) -> Option<JobId>;
	}
}
