#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub use pallet::*;

pub mod format;
mod functions;
pub mod rules;
pub mod types;
pub mod weights;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use format::{DataKind, Format};
pub use types::*;
pub use weights::WeightInfo;

use polkadot_sdk::{frame_support, frame_system, sp_io, sp_runtime};

use frame_support::dispatch::DispatchResult;

/// What other pallets may do with contributions: read them and move their status on.
pub trait ContributionRegistry<AccountId, BlockNumber> {
	/// Who submitted contribution `id`, where, when, and where it stands, if it exists.
	fn contribution_info(id: ContributionId) -> Option<ContributionInfo<AccountId, BlockNumber>>;

	/// Moves a `Pending` contribution to `status`. Fails for an unknown or already judged one.
	fn set_status(id: ContributionId, status: ContributionStatus) -> DispatchResult;

	/// The owner of `datanet`, if it exists.
	fn datanet_owner(datanet: DatanetId) -> Option<AccountId>;

	/// The kind of data `datanet` holds, if it exists.
	fn datanet_kind(datanet: DatanetId) -> Option<DataKind>;

	/// Records a fresh `Pending` contribution by `contributor`, in a new datanet, for other
	/// pallets' benchmarks.
	#[cfg(feature = "runtime-benchmarks")]
	fn create_for_benchmark(contributor: &AccountId) -> ContributionId;

	/// Records a fresh `Pending` text contribution by `contributor` in `datanet` (one made by
	/// [`Self::create_for_benchmark`]), distinct per `seed`, for other pallets' benchmarks.
	#[cfg(feature = "runtime-benchmarks")]
	fn submit_for_benchmark(
		contributor: &AccountId,
		datanet: DatanetId,
		seed: u32,
	) -> ContributionId;
}

/// Told of every accepted submission, so that validation can open its voting windows.
pub trait OnContribution<AccountId> {
	/// Contribution `id` by `contributor` was recorded in `datanet`.
	fn on_contribution(id: ContributionId, datanet: DatanetId, contributor: &AccountId);
}

impl<AccountId> OnContribution<AccountId> for () {
	fn on_contribution(_: ContributionId, _: DatanetId, _: &AccountId) {}
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use alloc::vec::Vec;
	use frame_support::{
		pallet_prelude::*,
		traits::fungible::{Inspect, Mutate, MutateHold},
	};
	use frame_system::pallet_prelude::*;

	/// The balance type of [`Config::Currency`].
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

	/// A datanet's metadata with this runtime's bounds.
	pub type MetadataOf<T> = Metadata<
		<T as Config>::MaxNameLen,
		<T as Config>::MaxSummaryLen,
		<T as Config>::MaxTagLen,
		<T as Config>::MaxTags,
	>;

	/// A contribution record with this runtime's types.
	pub type ContributionOf<T> =
		Contribution<<T as frame_system::Config>::AccountId, BlockNumberFor<T>>;

	/// Everything the chain knows about a datanet.
	#[derive(
		Encode,
		Decode,
		MaxEncodedLen,
		TypeInfo,
		CloneNoBound,
		PartialEqNoBound,
		EqNoBound,
		DebugNoBound,
	)]
	#[scale_info(skip_type_params(T))]
	pub struct DatanetInfo<T: Config> {
		/// Who created it and controls it.
		pub owner: T::AccountId,
		/// The kind of data it holds, fixed for life.
		pub kind: DataKind,
		/// The formats it admits, all of `kind`.
		pub formats: FormatSet,
		/// Its published caps.
		pub caps: Caps,
		/// Whether it takes contributions.
		pub status: DatanetStatus,
		/// The deposit held from the owner.
		pub deposit: BalanceOf<T>,
		/// Name, summary and tags.
		pub metadata: MetadataOf<T>,
	}

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// The deposit for a datanet's storage, released when it is closed.
		DatanetDeposit,
	}

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	/// Defaults for test runtimes, so a mock names only what it changes.
	pub mod config_preludes {
		use super::*;
		use frame_support::{derive_impl, register_default_impl, traits::ConstU64};

		/// One KiB.
		pub const KIB: u32 = 1024;
		/// The test runtime's hard cap on one file: small so tests stay fast.
		pub const MAX_FILE_BYTES: u32 = 8 * KIB;
		/// Blocks in a test day.
		pub const BLOCKS_PER_DAY: u64 = 100;
		/// Deposit held for any datanet in tests.
		pub const DEPOSIT_BASE: u64 = 100;
		/// Deposit held per metadata byte in tests.
		pub const DEPOSIT_PER_BYTE: u64 = 1;

		/// Small files and deposits, and daily quotas that other pallets' tests do not reach,
		/// for a test runtime whose balances and block numbers are `u64`.
		pub struct TestDefaultConfig;

		#[derive_impl(frame_system::config_preludes::TestDefaultConfig, no_aggregated_types)]
		impl frame_system::DefaultConfig for TestDefaultConfig {}

		#[register_default_impl(TestDefaultConfig)]
		impl DefaultConfig for TestDefaultConfig {
			#[inject_runtime_type]
			type RuntimeHoldReason = ();
			type DepositBase = ConstU64<DEPOSIT_BASE>;
			type DepositPerByte = ConstU64<DEPOSIT_PER_BYTE>;
			type MaxNameLen = ConstU32<64>;
			type MaxSummaryLen = ConstU32<256>;
			type MaxTagLen = ConstU32<16>;
			type MaxTags = ConstU32<4>;
			type MaxFileBytes = ConstU32<MAX_FILE_BYTES>;
			type AccountDailyFiles = ConstU32<100_000>;
			type AccountDailyBytes = ConstU64<{ 1 << 30 }>;
			type BlocksPerDay = ConstU64<BLOCKS_PER_DAY>;
			type OnContribution = ();
			type WeightInfo = ();
		}
	}

	#[pallet::config(with_default)]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency datanet deposits are held in.
		#[pallet::no_default]
		type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
			+ Mutate<Self::AccountId>;

		/// The overarching hold reason.
		#[pallet::no_default_bounds]
		type RuntimeHoldReason: From<HoldReason>;

		/// Deposit held for any datanet.
		#[pallet::constant]
		#[pallet::no_default_bounds]
		type DepositBase: Get<BalanceOf<Self>>;

		/// Deposit held per byte of a datanet's metadata.
		#[pallet::constant]
		#[pallet::no_default_bounds]
		type DepositPerByte: Get<BalanceOf<Self>>;

		/// Longest name, in bytes.
		#[pallet::constant]
		type MaxNameLen: Get<u32>;

		/// Longest summary, in bytes.
		#[pallet::constant]
		type MaxSummaryLen: Get<u32>;

		/// Longest tag, in bytes.
		#[pallet::constant]
		type MaxTagLen: Get<u32>;

		/// Most tags per datanet.
		#[pallet::constant]
		type MaxTags: Get<u32>;

		/// The runtime's hard cap on one file, in bytes. No datanet's cap may exceed it, and a
		/// block must have room for a submission this large (checked in `integrity_test`).
		#[pallet::constant]
		type MaxFileBytes: Get<u32>;

		/// Files one account may submit per day, across all datanets.
		#[pallet::constant]
		type AccountDailyFiles: Get<u32>;

		/// Bytes one account may submit per day, across all datanets.
		#[pallet::constant]
		type AccountDailyBytes: Get<u64>;

		/// The length of a day, in blocks. Must be non-zero.
		#[pallet::constant]
		#[pallet::no_default_bounds]
		type BlocksPerDay: Get<BlockNumberFor<Self>>;

		/// Told of each new contribution.
		#[pallet::no_default_bounds]
		type OnContribution: OnContribution<Self::AccountId>;

		/// Weights, from this pallet's benchmarks.
		type WeightInfo: WeightInfo;
	}

	/// The identifier the next datanet gets.
	#[pallet::storage]
	pub type NextDatanetId<T> = StorageValue<_, DatanetId, ValueQuery>;

	/// Every datanet ever created, closed ones included.
	#[pallet::storage]
	pub type Datanets<T: Config> = StorageMap<_, Twox64Concat, DatanetId, DatanetInfo<T>>;

	/// The identifier the next contribution gets.
	#[pallet::storage]
	pub type NextContributionId<T> = StorageValue<_, ContributionId, ValueQuery>;

	/// Every contribution's record.
	#[pallet::storage]
	pub type Contributions<T: Config> =
		StorageMap<_, Twox64Concat, ContributionId, ContributionOf<T>>;

	/// Contributions by datanet and content hash: finds duplicates, and a file by its hash.
	#[pallet::storage]
	pub type ContributionByContent<T> =
		StorageDoubleMap<_, Twox64Concat, DatanetId, Identity, ContentHash, ContributionId>;

	/// Each account's usage today, across all datanets.
	#[pallet::storage]
	pub type AccountUsage<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, DailyUsage, ValueQuery>;

	/// Each datanet's usage today.
	#[pallet::storage]
	pub type DatanetUsage<T> = StorageMap<_, Twox64Concat, DatanetId, DailyUsage, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A datanet was created.
		DatanetCreated {
			/// The new datanet.
			datanet: DatanetId,
			/// Its owner.
			owner: T::AccountId,
			/// The kind of data it holds.
			kind: DataKind,
		},
		/// A datanet's name, summary or tags changed.
		MetadataUpdated {
			/// The datanet.
			datanet: DatanetId,
		},
		/// A datanet's caps or format allow-list changed.
		RulesUpdated {
			/// The datanet.
			datanet: DatanetId,
			/// The new allow-list.
			formats: FormatSet,
			/// The new caps.
			caps: Caps,
		},
		/// A datanet stopped taking contributions for now.
		DatanetPaused {
			/// The datanet.
			datanet: DatanetId,
		},
		/// A paused datanet takes contributions again.
		DatanetResumed {
			/// The datanet.
			datanet: DatanetId,
		},
		/// A datanet closed for good, and its deposit was released.
		DatanetClosed {
			/// The datanet.
			datanet: DatanetId,
			/// The deposit returned to the owner.
			deposit_released: BalanceOf<T>,
		},
		/// A file was stored and awaits validation.
		ContributionSubmitted {
			/// The new contribution.
			contribution: ContributionId,
			/// The datanet it went to.
			datanet: DatanetId,
			/// Who submitted it.
			who: T::AccountId,
			/// blake2-256 of its bytes: fetch them with the `datanets_content` RPC.
			hash: ContentHash,
			/// Its size in bytes.
			size: u32,
			/// The format detected from its bytes.
			format: Format,
		},
		/// Validation moved a contribution on.
		ContributionStatusChanged {
			/// The contribution.
			contribution: ContributionId,
			/// Its new status.
			status: ContributionStatus,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No datanet has this identifier.
		UnknownDatanet,
		/// Only the datanet's owner may do this.
		NotOwner,
		/// The datanet is paused by its owner.
		DatanetPaused,
		/// The datanet is closed for good.
		DatanetClosed,
		/// The datanet is not paused, so it cannot be resumed.
		NotPaused,
		/// The name is empty or longer than `MaxNameLen`.
		BadName,
		/// The summary is longer than `MaxSummaryLen`.
		SummaryTooLong,
		/// A tag is empty or longer than `MaxTagLen`, or there are more than `MaxTags`.
		BadTags,
		/// Name, summary and tags must be UTF-8.
		MetadataNotUtf8,
		/// The format allow-list is empty.
		NoFormats,
		/// The allow-list names a format of another kind than the datanet's.
		FormatOfOtherKind,
		/// The per-file cap is zero or above the runtime's hard cap.
		BadFileCap,
		/// The datanet's daily cap is smaller than its per-file cap.
		BadDailyCap,
		/// The file has no bytes.
		EmptyFile,
		/// The file is larger than the datanet's per-file cap.
		FileTooLarge,
		/// The bytes match no format the chain knows.
		UnrecognizedFormat,
		/// The detected format carries another kind of data than the datanet's.
		WrongKind {
			/// What the bytes are.
			detected: Format,
		},
		/// The detected format is not in the datanet's allow-list.
		FormatNotAllowed {
			/// What the bytes are.
			detected: Format,
		},
		/// These exact bytes are already in this datanet.
		Duplicate,
		/// The contributor has submitted `AccountDailyFiles` files today.
		DailyFileCapReached,
		/// The file would take the contributor past `AccountDailyBytes` today.
		DailyByteCapReached,
		/// The file would take the datanet past its daily byte cap.
		DatanetDailyCapReached,
		/// The contribution does not exist.
		UnknownContribution,
		/// The contribution was already judged.
		AlreadyJudged,
		/// A contribution can only be moved to a final status.
		NotAFinalStatus,
		/// The identifier space is exhausted.
		Overflow,
		/// A submission must come in an extrinsic, whose bytes the node can index.
		NotInAnExtrinsic,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(!T::BlocksPerDay::get().is_zero(), "BlocksPerDay must be non-zero");
			assert!(T::MaxFileBytes::get() > 0, "MaxFileBytes must be non-zero");
			let normal_max = *<T as frame_system::Config>::BlockLength::get()
				.max
				.get(frame_support::dispatch::DispatchClass::Normal);
			assert!(
				normal_max >= T::MaxFileBytes::get(),
				"a block's normal class ({normal_max} bytes) must admit a maximal file"
			);
			assert!(
				u64::from(T::MaxFileBytes::get()) <= T::AccountDailyBytes::get(),
				"one maximal file must fit an account's daily byte cap"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call(weight(<T as Config>::WeightInfo))]
	impl<T: Config> Pallet<T> {
		/// Creates a datanet owned by the caller, holding a deposit for its metadata.
		///
		/// `formats` must be non-empty and all of `kind`; `caps.max_file_bytes` must be within
		/// the runtime's hard cap and no larger than `caps.daily_bytes`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::create(
			name.len() as u32 + summary.len() as u32 + tags.iter().map(|t| t.len() as u32).sum::<u32>()
		))]
		pub fn create(
			origin: OriginFor<T>,
			name: Vec<u8>,
			summary: Vec<u8>,
			tags: Vec<Vec<u8>>,
			kind: DataKind,
			formats: FormatSet,
			caps: Caps,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			let metadata = Self::bounded_metadata(name, summary, tags)?;
			Self::ensure_rules(kind, formats, caps)?;
			let datanet = Self::do_create(owner.clone(), metadata, kind, formats, caps)?;
			Self::deposit_event(Event::DatanetCreated { datanet, owner, kind });
			Ok(())
		}

		/// Replaces a datanet's name, summary and tags; the deposit follows the new size.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::update_metadata(
			name.len() as u32 + summary.len() as u32 + tags.iter().map(|t| t.len() as u32).sum::<u32>()
		))]
		pub fn update_metadata(
			origin: OriginFor<T>,
			datanet: DatanetId,
			name: Vec<u8>,
			summary: Vec<u8>,
			tags: Vec<Vec<u8>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let metadata = Self::bounded_metadata(name, summary, tags)?;
			Self::do_update_metadata(&who, datanet, metadata)?;
			Self::deposit_event(Event::MetadataUpdated { datanet });
			Ok(())
		}

		/// Changes a datanet's format allow-list and caps. The kind stays fixed.
		#[pallet::call_index(2)]
		pub fn update_rules(
			origin: OriginFor<T>,
			datanet: DatanetId,
			formats: FormatSet,
			caps: Caps,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_update_rules(&who, datanet, formats, caps)?;
			Self::deposit_event(Event::RulesUpdated { datanet, formats, caps });
			Ok(())
		}

		/// Stops a datanet taking contributions until it is resumed.
		#[pallet::call_index(3)]
		pub fn pause(origin: OriginFor<T>, datanet: DatanetId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_set_status(&who, datanet, DatanetStatus::Paused)?;
			Self::deposit_event(Event::DatanetPaused { datanet });
			Ok(())
		}

		/// Lets a paused datanet take contributions again.
		#[pallet::call_index(4)]
		pub fn resume(origin: OriginFor<T>, datanet: DatanetId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_set_status(&who, datanet, DatanetStatus::Active)?;
			Self::deposit_event(Event::DatanetResumed { datanet });
			Ok(())
		}

		/// Closes a datanet for good and releases its deposit. Its contributions stay on record.
		#[pallet::call_index(5)]
		pub fn close(origin: OriginFor<T>, datanet: DatanetId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let deposit_released = Self::do_close(&who, datanet)?;
			Self::deposit_event(Event::DatanetClosed { datanet, deposit_released });
			Ok(())
		}

		/// Submits a file to a datanet. The bytes are the last argument, so the node can index
		/// them as the tail of the extrinsic.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::submit(data.len() as u32))]
		pub fn submit(origin: OriginFor<T>, datanet: DatanetId, data: Vec<u8>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let (contribution, record) = Self::do_submit(who.clone(), datanet, &data)?;
			Self::deposit_event(Event::ContributionSubmitted {
				contribution,
				datanet,
				who,
				hash: record.hash,
				size: record.size,
				format: record.format,
			});
			Ok(())
		}
	}
}
