#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub use pallet::*;

mod functions;
pub mod merkle;
pub mod types;
pub mod weights;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use provenant_jobspec as jobspec;
pub use types::*;
pub use weights::WeightInfo;

use polkadot_sdk::{frame_support, frame_system, sp_io, sp_runtime};

/// What other pallets need of committed jobs: paid inference pays for answers from a job's
/// adapter by the same published split as the job's own fee.
pub trait JobRevenue<AccountId, Balance> {
	/// How many contributors' shares a payment for `job` reads, or `None` when `job` is not
	/// committed and has no adapter to serve.
	fn committed_shares(job: JobId) -> Option<u32>;

	/// Pays `amount` from `payer`'s free balance for the use of `job`'s adapter, split as a
	/// commit splits the job's fee: trainer, datanets' pools, contributors by their shares.
	/// The credits are earned by inference.
	fn pay_for_job(
		payer: &AccountId,
		job: JobId,
		amount: Balance,
	) -> Result<Paid<Balance>, sp_runtime::DispatchError>;

	/// A committed job whose training set has `shares` members, for other pallets' benchmarks.
	#[cfg(feature = "runtime-benchmarks")]
	fn committed_for_benchmark(shares: u32) -> JobId;
}

// `register_model` takes a model's eight facts as its arguments, and FRAME generates a
// constructor with the same list.
#[allow(clippy::too_many_arguments)]
#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use alloc::vec::Vec;
	use frame_support::{
		pallet_prelude::*,
		traits::fungible::{Inspect, Mutate, MutateHold},
	};
	use frame_system::pallet_prelude::*;
	use pallet_datanets::{ContributionId, ContributionRegistry, DatanetId};
	use pallet_rewards::RewardsLedger;
	use provenant_jobspec::{Family, Field, HyperParams};
	use sp_runtime::Perbill;

	/// The balance type of [`Config::Currency`].
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
	/// A base model with this runtime's types.
	pub type BaseModelOf<T> = BaseModel<<T as frame_system::Config>::AccountId, BalanceOf<T>>;
	/// A job with this runtime's types.
	pub type JobOf<T> =
		Job<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
	/// A job's state with this runtime's types.
	pub type JobStateOf<T> = JobState<<T as frame_system::Config>::AccountId, BlockNumberFor<T>>;

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// The deposit for a base model's record.
		ModelDeposit,
		/// A job's fee, until its commit pays it out or its creator cancels it.
		JobEscrow,
		/// A trainer worker's bond.
		WorkerBond,
	}

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	/// Defaults for test runtimes, so a mock names only what it changes.
	pub mod config_preludes {
		use super::*;
		use frame_support::{
			derive_impl, parameter_types, register_default_impl, traits::ConstU64,
		};

		/// Held for each base model in tests.
		pub const MODEL_DEPOSIT: u64 = 500;
		/// The smallest job fee in tests.
		pub const MIN_FEE: u64 = 1_000;
		/// The smallest worker bond in tests.
		pub const MIN_BOND: u64 = 10_000;
		/// Blocks a lease lasts in tests.
		pub const LEASE: u64 = 20;
		/// The largest training set in tests.
		pub const MAX_SHARES: u32 = 50;

		parameter_types! {
			/// 60% to the trainer, 10% to the pools, 30% to the contributors.
			pub TestFeeSplit: FeeSplit = FeeSplit {
				trainer: Perbill::from_percent(60),
				pools: Perbill::from_percent(10),
				contributors: Perbill::from_percent(30),
			};
			/// A worker whose lease runs out loses 10% of its bond.
			pub const ExpirySlash: Perbill = Perbill::from_percent(10);
		}

		/// Short leases and small sets, for a test runtime whose balances and block numbers are
		/// `u64`.
		pub struct TestDefaultConfig;

		#[derive_impl(frame_system::config_preludes::TestDefaultConfig, no_aggregated_types)]
		impl frame_system::DefaultConfig for TestDefaultConfig {}

		#[register_default_impl(TestDefaultConfig)]
		impl DefaultConfig for TestDefaultConfig {
			#[inject_runtime_type]
			type RuntimeHoldReason = ();
			type ModelDeposit = ConstU64<MODEL_DEPOSIT>;
			type MinJobFee = ConstU64<MIN_FEE>;
			type MinWorkerBond = ConstU64<MIN_BOND>;
			type DefaultLeasePeriod = ConstU64<LEASE>;
			type ExpirySlash = ExpirySlash;
			type MaxShares = ConstU32<MAX_SHARES>;
			type MaxLeasesPerBlock = ConstU32<2>;
			type MaxAdapterBytes = ConstU32<4096>;
			type DefaultFeeSplit = TestFeeSplit;
			type WeightInfo = ();
		}
	}

	#[pallet::config(with_default)]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency deposits, fees and bonds are held in.
		#[pallet::no_default]
		type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
			+ Mutate<Self::AccountId>;

		/// The overarching hold reason.
		#[pallet::no_default_bounds]
		type RuntimeHoldReason: From<HoldReason>;

		/// The datanets and their contributions.
		#[pallet::no_default]
		type Datanets: ContributionRegistry<Self::AccountId, BlockNumberFor<Self>>;

		/// Pays the fee's parts into pools and claimable balances.
		#[pallet::no_default]
		type Rewards: RewardsLedger<Self::AccountId, BalanceOf<Self>>;

		/// Held for each registered base model.
		#[pallet::constant]
		#[pallet::no_default_bounds]
		type ModelDeposit: Get<BalanceOf<Self>>;

		/// The smallest fee a job may offer.
		#[pallet::constant]
		#[pallet::no_default_bounds]
		type MinJobFee: Get<BalanceOf<Self>>;

		/// The smallest bond a worker needs to claim a job.
		#[pallet::constant]
		#[pallet::no_default_bounds]
		type MinWorkerBond: Get<BalanceOf<Self>>;

		/// Blocks a claim or an extension lasts until genesis or root says otherwise. Must be
		/// non-zero.
		#[pallet::no_default_bounds]
		type DefaultLeasePeriod: Get<BlockNumberFor<Self>>;

		/// The part of its bond a worker loses when its lease runs out.
		#[pallet::constant]
		type ExpirySlash: Get<Perbill>;

		/// The largest training set a job may have: a commit lists every member's share.
		#[pallet::constant]
		type MaxShares: Get<u32>;

		/// The most leases that may end in one block (claims and extensions in one block).
		#[pallet::constant]
		type MaxLeasesPerBlock: Get<u32>;

		/// The largest adapter weights file the chain stores, in bytes. A block must have room
		/// for it.
		#[pallet::constant]
		type MaxAdapterBytes: Get<u32>;

		/// The fee split until genesis or root says otherwise. Its parts must add up to 100%.
		type DefaultFeeSplit: Get<FeeSplit>;

		/// Weights, from this pallet's benchmarks.
		type WeightInfo: WeightInfo;
	}

	/// The identifier the next base model gets.
	#[pallet::storage]
	pub type NextModelId<T> = StorageValue<_, ModelId, ValueQuery>;

	/// Every registered base model, retired ones included.
	#[pallet::storage]
	pub type BaseModels<T: Config> = StorageMap<_, Twox64Concat, ModelId, BaseModelOf<T>>;

	/// The identifier the next job gets.
	#[pallet::storage]
	pub type NextJobId<T> = StorageValue<_, JobId, ValueQuery>;

	/// Every job.
	#[pallet::storage]
	pub type Jobs<T: Config> = StorageMap<_, Twox64Concat, JobId, JobOf<T>>;

	/// The adapter published for a job by its lease holder, before the commit.
	#[pallet::storage]
	pub type Adapters<T: Config> =
		StorageMap<_, Twox64Concat, JobId, PublishedAdapter<T::AccountId>>;

	/// What the worker reported for each committed job.
	#[pallet::storage]
	pub type Results<T: Config> = StorageMap<_, Twox64Concat, JobId, Outcome>;

	/// The contributors' shares of each committed job, in training-set order.
	#[pallet::storage]
	pub type Shares<T: Config> =
		StorageMap<_, Twox64Concat, JobId, BoundedVec<Share, T::MaxShares>>;

	/// The committed job of each adapter, by the sha256 of its weights file.
	#[pallet::storage]
	pub type JobByAdapter<T> = StorageMap<_, Identity, Sha256, JobId>;

	/// Workers whose lease on a job ran out: their late commits are refused by name.
	#[pallet::storage]
	pub type Lapsed<T: Config> =
		StorageDoubleMap<_, Twox64Concat, JobId, Blake2_128Concat, T::AccountId, ()>;

	/// The jobs to check for a lapsed lease at the start of a block: the block after their
	/// lease's last. An extended lease is queued again and skipped here.
	#[pallet::storage]
	pub type ExpiryQueue<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<JobId, T::MaxLeasesPerBlock>,
		ValueQuery,
	>;

	/// Bonded trainer workers.
	#[pallet::storage]
	pub type Workers<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, WorkerInfo<BalanceOf<T>>>;

	/// The published fee split.
	#[pallet::storage]
	pub type CurrentFeeSplit<T: Config> = StorageValue<_, FeeSplit, ValueQuery, T::DefaultFeeSplit>;

	/// Blocks a claim or an extension lasts.
	#[pallet::storage]
	pub type LeasePeriod<T: Config> =
		StorageValue<_, BlockNumberFor<T>, ValueQuery, T::DefaultLeasePeriod>;

	/// The length of each datanet's log of accepted contributions.
	#[pallet::storage]
	pub type LogLength<T> = StorageMap<_, Twox64Concat, DatanetId, u64, ValueQuery>;

	/// Each datanet's log of accepted contributions, in acceptance order. Append-only.
	#[pallet::storage]
	pub type Log<T> = StorageDoubleMap<_, Twox64Concat, DatanetId, Twox64Concat, u64, LogEntry>;

	/// Where each accepted contribution stands in its datanet's log.
	#[pallet::storage]
	pub type LogPosition<T> = StorageMap<_, Twox64Concat, ContributionId, (DatanetId, u64)>;

	/// The frontier of each datanet's log tree ([`merkle`]).
	#[pallet::storage]
	pub type Frontiers<T> = StorageMap<_, Twox64Concat, DatanetId, merkle::Frontier>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// The fee split the chain starts with, if not `Config::DefaultFeeSplit`.
		pub fee_split: Option<FeeSplit>,
		/// The lease period the chain starts with, if not `Config::DefaultLeasePeriod`.
		pub lease_period: Option<BlockNumberFor<T>>,
		#[serde(skip)]
		#[allow(missing_docs)]
		pub _config: core::marker::PhantomData<T>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if let Some(split) = self.fee_split {
				assert!(
					split.is_whole(),
					"pallet-models genesis fee split does not add up to 100%"
				);
				CurrentFeeSplit::<T>::put(split);
			}
			if let Some(blocks) = self.lease_period {
				assert!(!blocks.is_zero(), "pallet-models genesis lease period is zero");
				LeasePeriod::<T>::put(blocks);
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A base model was registered.
		ModelRegistered {
			/// Its identifier.
			model: ModelId,
			/// Who registered it.
			owner: T::AccountId,
			/// Its family.
			family: Family,
		},
		/// A base model takes no new jobs.
		ModelRetired {
			/// The model.
			model: ModelId,
		},
		/// A job was created and its fee put in escrow.
		JobCreated {
			/// The job.
			job: JobId,
			/// Who ordered it.
			creator: T::AccountId,
			/// The base model.
			model: ModelId,
			/// The fee in escrow.
			fee: BalanceOf<T>,
			/// The training set's root.
			training_root: Hash32,
			/// Contributions in the training set.
			size: u64,
		},
		/// The creator cancelled an unclaimed job and got the fee back.
		JobCancelled {
			/// The job.
			job: JobId,
		},
		/// The creator stopped a claimed job: the fee came back, less the worker's pay.
		JobStopped {
			/// The job.
			job: JobId,
			/// The worker that held the lease.
			worker: T::AccountId,
			/// Credited to the worker: the trainer's part of the fee.
			paid: BalanceOf<T>,
		},
		/// A worker added to its bond.
		Bonded {
			/// The worker.
			worker: T::AccountId,
			/// Added.
			amount: BalanceOf<T>,
		},
		/// A worker took some of its bond back.
		Unbonded {
			/// The worker.
			worker: T::AccountId,
			/// Released.
			amount: BalanceOf<T>,
		},
		/// A worker claimed a job.
		JobClaimed {
			/// The job.
			job: JobId,
			/// The worker.
			worker: T::AccountId,
			/// The last block of its lease.
			until: BlockNumberFor<T>,
		},
		/// A worker extended its lease.
		LeaseExtended {
			/// The job.
			job: JobId,
			/// The new last block.
			until: BlockNumberFor<T>,
		},
		/// A lease ran out: the job is open again and the worker lost part of its bond.
		LeaseExpired {
			/// The job.
			job: JobId,
			/// The worker.
			worker: T::AccountId,
			/// Burnt from its bond.
			slashed: BalanceOf<T>,
		},
		/// A worker published a job's adapter; the content RPC serves it under `content`.
		AdapterPublished {
			/// The job.
			job: JobId,
			/// sha256 of the weights file.
			sha256: Sha256,
			/// Its size.
			size: u32,
			/// Its blake2-256.
			content: ContentHash,
		},
		/// A job was committed and its fee paid out.
		JobCommitted {
			/// The job.
			job: JobId,
			/// The worker.
			worker: T::AccountId,
			/// sha256 of the adapter's weights file.
			adapter: Sha256,
			/// Credited to the worker.
			trainer_paid: BalanceOf<T>,
			/// Added to the datanets' pools.
			pools_paid: BalanceOf<T>,
			/// Credited to the contributors.
			contributors_paid: BalanceOf<T>,
		},
		/// An accepted contribution joined its datanet's log.
		ContributionLogged {
			/// The datanet.
			datanet: DatanetId,
			/// The contribution.
			contribution: ContributionId,
			/// Its position in the log.
			index: u64,
		},
		/// Root changed the fee split.
		FeeSplitChanged {
			/// The new split.
			split: FeeSplit,
		},
		/// Root changed the lease period.
		LeasePeriodChanged {
			/// Blocks a claim or an extension now lasts.
			blocks: BlockNumberFor<T>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No base model has this identifier.
		UnknownModel,
		/// Only the model's owner may do this.
		NotModelOwner,
		/// The model is retired and takes no new jobs.
		ModelRetired,
		/// A model needs the sha256 of at least one weights file.
		NoWeightFiles,
		/// More weight files than a model record holds (64).
		TooManyWeightFiles,
		/// A name is empty or longer than 64 bytes.
		BadName,
		/// A licence or source is longer than 256 bytes.
		TextTooLong,
		/// A model must attend over at least 2 positions.
		TooFewPositions,
		/// A job needs at least one datanet.
		NoDatanets,
		/// More datanets than a job holds (8).
		TooManyDatanets,
		/// A datanet is named twice.
		DuplicateDatanet,
		/// No datanet has this identifier.
		UnknownDatanet,
		/// Jobs train on text datanets only.
		NotATextDatanet,
		/// The datanets have no accepted contribution yet.
		EmptyTrainingSet,
		/// The training set is larger than a commit can list (`MaxShares`).
		TrainingSetTooLarge,
		/// A hyper-parameter breaks the trainer's rules; the field says which.
		InvalidHyperParameter(Field),
		/// The fee is below `MinJobFee`.
		FeeTooLow,
		/// The account cannot hold this much.
		InsufficientBalance,
		/// No job has this identifier.
		UnknownJob,
		/// Only the job's creator may do this.
		NotJobCreator,
		/// The job is not open: claimed, committed or cancelled.
		JobNotOpen,
		/// The job is committed or cancelled already: there is nothing left to stop.
		JobOver,
		/// The bond would be below `MinWorkerBond`.
		BondTooSmall,
		/// The account is not a bonded worker.
		NotAWorker,
		/// A worker holding a lease cannot unbond below the minimum.
		StillClaiming,
		/// Too many leases end in that block; try again in the next one.
		LeaseQueueFull,
		/// The caller does not hold the job's lease.
		NotLeaseHolder,
		/// The caller's lease on the job ran out; the job went back to the queue.
		LeaseExpired,
		/// The caller has less bonded than that.
		NotThatMuchBonded,
		/// The amount must be more than zero.
		ZeroAmount,
		/// The job is already committed.
		AlreadyCommitted,
		/// An adapter's weights file is empty.
		EmptyAdapter,
		/// An adapter's weights file is larger than `MaxAdapterBytes`.
		AdapterTooLarge,
		/// `adapter_config.json` is longer than 4096 bytes.
		AdapterConfigTooLarge,
		/// The caller published no adapter for the job.
		NoAdapterPublished,
		/// The commit names another adapter than the one published.
		AdapterMismatch,
		/// This adapter is already the result of another job.
		AdapterAlreadyCommitted,
		/// The commit's training-set root is not the job's.
		WrongTrainingRoot,
		/// The shares do not list the training set, each member once, in order.
		SharesMismatch,
		/// The shares' root is not the root of the listed shares.
		SharesRootMismatch,
		/// The shares add up to zero.
		SharesAddUpToZero,
		/// Attributed shares must add up to exactly one (a billion parts per billion).
		SharesNotWhole,
		/// An attributed outcome must state its projection's dimension, its checkpoints and
		/// its probes, each at least one.
		AttributionUnstated,
		/// The fee split's parts must add up to 100%.
		BadFeeSplit,
		/// A lease must last at least one block.
		ZeroLeasePeriod,
		/// Adapters can only be published from a transaction.
		NotInAnExtrinsic,
		/// The job is not committed: it has no adapter to pay for.
		NotCommitted,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		/// Re-opens the jobs whose lease ended in the previous block.
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let expired = Self::expire_leases(now);
			T::WeightInfo::expire_leases(expired)
		}

		fn integrity_test() {
			assert!(T::DefaultFeeSplit::get().is_whole(), "DefaultFeeSplit must add up to 100%");
			assert!(!T::DefaultLeasePeriod::get().is_zero(), "a lease must last at least a block");
			assert!(T::MaxShares::get() > 0, "a job must be able to hold a contribution");
			assert!(T::MaxLeasesPerBlock::get() > 0, "claims must be possible");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Registers a base model by the hashes of its files, holding `ModelDeposit`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_model(weights.len() as u32))]
		pub fn register_model(
			origin: OriginFor<T>,
			family: Family,
			name: Vec<u8>,
			weights: Vec<Sha256>,
			tokenizer: Sha256,
			max_positions: u32,
			licence: Vec<u8>,
			source: Vec<u8>,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			let model = Self::do_register_model(
				owner.clone(),
				family,
				name,
				weights,
				tokenizer,
				max_positions,
				licence,
				source,
			)?;
			Self::deposit_event(Event::ModelRegistered { model, owner, family });
			Ok(())
		}

		/// Stops a model taking new jobs. Its jobs, and its record, stay.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::retire_model())]
		pub fn retire_model(origin: OriginFor<T>, model: ModelId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			BaseModels::<T>::try_mutate(model, |record| {
				let record = record.as_mut().ok_or(Error::<T>::UnknownModel)?;
				ensure!(record.owner == who, Error::<T>::NotModelOwner);
				ensure!(!record.retired, Error::<T>::ModelRetired);
				record.retired = true;
				Ok::<_, DispatchError>(())
			})?;
			Self::deposit_event(Event::ModelRetired { model });
			Ok(())
		}

		/// Orders a fine-tune of `model` on the accepted contributions of `datanets` so far,
		/// holding `fee` in escrow.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::create_job(datanets.len() as u32))]
		pub fn create_job(
			origin: OriginFor<T>,
			model: ModelId,
			datanets: Vec<DatanetId>,
			params: HyperParams,
			#[pallet::compact] fee: BalanceOf<T>,
		) -> DispatchResult {
			let creator = ensure_signed(origin)?;
			let (job, training) =
				Self::do_create_job(creator.clone(), model, datanets, params, fee)?;
			Self::deposit_event(Event::JobCreated {
				job,
				creator,
				model,
				fee,
				training_root: training.root,
				size: training.size,
			});
			Ok(())
		}

		/// Takes back an unclaimed job and its fee, or stops a claimed one: its worker is paid
		/// the trainer's part of the fee for the compute spent, and the rest comes back.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::cancel_job())]
		pub fn cancel_job(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			match Self::do_cancel_job(&who, job)? {
				Some((worker, paid)) => {
					Self::deposit_event(Event::JobStopped { job, worker, paid })
				},
				None => Self::deposit_event(Event::JobCancelled { job }),
			}
			Ok(())
		}

		/// Adds `amount` to the caller's worker bond.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::bond())]
		pub fn bond(
			origin: OriginFor<T>,
			#[pallet::compact] amount: BalanceOf<T>,
		) -> DispatchResult {
			let worker = ensure_signed(origin)?;
			Self::do_bond(&worker, amount)?;
			Self::deposit_event(Event::Bonded { worker, amount });
			Ok(())
		}

		/// Releases `amount` of the caller's bond. What stays must be zero, with no lease held,
		/// or at least `MinWorkerBond`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::unbond())]
		pub fn unbond(
			origin: OriginFor<T>,
			#[pallet::compact] amount: BalanceOf<T>,
		) -> DispatchResult {
			let worker = ensure_signed(origin)?;
			Self::do_unbond(&worker, amount)?;
			Self::deposit_event(Event::Unbonded { worker, amount });
			Ok(())
		}

		/// Takes an open job, with a lease of [`LeasePeriod`] blocks.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::claim())]
		pub fn claim(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			let worker = ensure_signed(origin)?;
			let until = Self::do_claim(&worker, job)?;
			Self::deposit_event(Event::JobClaimed { job, worker, until });
			Ok(())
		}

		/// Renews the caller's lease on `job` for [`LeasePeriod`] blocks from now.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::extend())]
		pub fn extend(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			let worker = ensure_signed(origin)?;
			let until = Self::do_extend(&worker, job)?;
			Self::deposit_event(Event::LeaseExtended { job, until });
			Ok(())
		}

		/// Publishes the adapter trained for `job`: `config` is `adapter_config.json`, and
		/// `weights`, `adapter_model.safetensors`, goes into the transaction index, where the
		/// content RPC serves it by its blake2-256. Only the lease holder may publish.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::publish_adapter(weights.len() as u32))]
		pub fn publish_adapter(
			origin: OriginFor<T>,
			job: JobId,
			config: Vec<u8>,
			weights: Vec<u8>,
		) -> DispatchResult {
			let worker = ensure_signed(origin)?;
			let published = Self::do_publish_adapter(&worker, job, config, &weights)?;
			Self::deposit_event(Event::AdapterPublished {
				job,
				sha256: published.sha256,
				size: published.size,
				content: published.content,
			});
			Ok(())
		}

		/// Commits the result of `job`: the published adapter, the training-set root, the
		/// metrics, and every member's share in training-set order. Pays the fee out by the
		/// published split.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::commit(shares.len() as u32))]
		pub fn commit(
			origin: OriginFor<T>,
			job: JobId,
			outcome: Outcome,
			shares: Vec<Share>,
		) -> DispatchResult {
			let worker = ensure_signed(origin)?;
			let paid = Self::do_commit(&worker, job, outcome.clone(), shares)?;
			Self::deposit_event(Event::JobCommitted {
				job,
				worker,
				adapter: outcome.adapter,
				trainer_paid: paid.trainer,
				pools_paid: paid.pools,
				contributors_paid: paid.contributors,
			});
			Ok(())
		}

		/// Replaces the fee split.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::set_fee_split())]
		pub fn set_fee_split(origin: OriginFor<T>, split: FeeSplit) -> DispatchResult {
			ensure_root(origin)?;
			ensure!(split.is_whole(), Error::<T>::BadFeeSplit);
			CurrentFeeSplit::<T>::put(split);
			Self::deposit_event(Event::FeeSplitChanged { split });
			Ok(())
		}

		/// Sets how many blocks a claim or an extension lasts. Leases already granted keep
		/// their end.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::set_lease_period())]
		pub fn set_lease_period(origin: OriginFor<T>, blocks: BlockNumberFor<T>) -> DispatchResult {
			ensure_root(origin)?;
			ensure!(!blocks.is_zero(), Error::<T>::ZeroLeasePeriod);
			LeasePeriod::<T>::put(blocks);
			Self::deposit_event(Event::LeasePeriodChanged { blocks });
			Ok(())
		}
	}
}
