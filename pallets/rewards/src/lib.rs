#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub use pallet::*;

mod functions;
mod ranking;
pub mod score;
pub mod types;
pub mod weights;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use ranking::RANK_BUCKETS;
pub use types::*;
pub use weights::WeightInfo;

use pallet_datanets::DatanetId;
use polkadot_sdk::{frame_support, frame_system, sp_arithmetic, sp_runtime};

/// How other pallets pay through rewards: into a datanet's pool by the same path as `fund`,
/// or onto accounts' claimable balances, which their owners take with `claim`.
pub trait RewardsLedger<AccountId, Balance> {
	/// Moves `amount` from `payer` into `datanet`'s pool.
	fn fund_pool(
		payer: &AccountId,
		datanet: DatanetId,
		amount: Balance,
	) -> frame_support::dispatch::DispatchResult;

	/// Moves the sum of `credits` from `payer` into the pot in one transfer, then credits
	/// each account its amount, as earned by `source`.
	fn pay_claimable(
		payer: &AccountId,
		source: RewardSource,
		credits: &[(AccountId, Balance)],
	) -> frame_support::dispatch::DispatchResult;
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, Mutate},
			tokens::Preservation,
		},
		PalletId,
	};
	use frame_system::pallet_prelude::*;
	use pallet_datanets::ContributionRegistry;
	use sp_runtime::traits::{AccountIdConversion, Zero};

	/// The balance type of [`Config::Currency`].
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
	/// The parameters with this runtime's balance.
	pub type ParamsOf<T> = RewardParams<BalanceOf<T>>;
	/// A standing with this runtime's balance.
	pub type StandingOf<T> = Standing<BalanceOf<T>>;

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	/// Defaults for test runtimes, so a mock names only what it changes.
	pub mod config_preludes {
		use super::*;
		use frame_support::{derive_impl, parameter_types, register_default_impl};
		use sp_runtime::Perbill;

		/// Blocks per epoch in tests.
		pub const EPOCH: u64 = 30;
		/// Minted per active datanet per epoch in tests.
		pub const ISSUANCE: u64 = 100_000;

		/// The test rules: 30-block epochs; contributors 70%, validators 20%, the owner 10%.
		pub fn test_params() -> RewardParams<u64> {
			RewardParams {
				epoch_length: EPOCH as u32,
				issuance_per_datanet: ISSUANCE,
				rejection_half_life: 7,
				contributors_share: Perbill::from_percent(70),
				validators_share: Perbill::from_percent(20),
				owner_share: Perbill::from_percent(10),
			}
		}

		parameter_types! {
			/// [`test_params`], as a `Get`.
			pub TestParams: RewardParams<u64> = test_params();
			/// The pools' account.
			pub const RewardsPalletId: PalletId = PalletId(*b"prv/rwds");
		}

		/// Short epochs, for a test runtime whose balances and block numbers are `u64`.
		pub struct TestDefaultConfig;

		#[derive_impl(frame_system::config_preludes::TestDefaultConfig, no_aggregated_types)]
		impl frame_system::DefaultConfig for TestDefaultConfig {}

		#[register_default_impl(TestDefaultConfig)]
		impl DefaultConfig for TestDefaultConfig {
			type PalletId = RewardsPalletId;
			type DefaultParams = TestParams;
			type MaxSettlementSteps = ConstU32<1_000>;
			type WeightInfo = ();
		}
	}

	#[pallet::config(with_default)]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Mints issuance into the pools and pays claims out of them.
		#[pallet::no_default]
		type Currency: Mutate<Self::AccountId>;

		/// The datanets, for their owners.
		#[pallet::no_default]
		type Datanets: ContributionRegistry<Self::AccountId, BlockNumberFor<Self>>;

		/// Derives the account that holds every pool and unclaimed reward.
		#[pallet::constant]
		type PalletId: Get<PalletId>;

		/// The rules until genesis or root says otherwise. Must pass the checks of
		/// `set_params`.
		#[pallet::no_default_bounds]
		type DefaultParams: Get<ParamsOf<Self>>;

		/// The most settlement steps (a datanet's pool split, or one account credited) done in
		/// one block. Bounds `on_initialize`; a finished epoch with more work takes more blocks.
		#[pallet::constant]
		type MaxSettlementSteps: Get<u32>;

		/// Weights, from this pallet's benchmarks.
		type WeightInfo: WeightInfo;
	}

	/// The published rules: epoch length, issuance, decay and the split.
	#[pallet::storage]
	pub type CurrentParams<T: Config> = StorageValue<_, ParamsOf<T>, ValueQuery, T::DefaultParams>;

	/// The current epoch.
	#[pallet::storage]
	pub type CurrentEpoch<T: Config> = StorageValue<_, EpochIndex, ValueQuery>;

	/// The block the current epoch started at.
	#[pallet::storage]
	pub type EpochStart<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	/// The oldest epoch whose payouts are not finished; equal to `CurrentEpoch` when all are.
	#[pallet::storage]
	pub type Unsettled<T: Config> = StorageValue<_, EpochIndex, ValueQuery>;

	/// How far settlement of epoch `Unsettled` has got.
	#[pallet::storage]
	pub type Phase<T: Config> = StorageValue<_, SettlementPhase, ValueQuery>;

	/// Each contributor's ranking record and earnings, per datanet.
	#[pallet::storage]
	pub type Standings<T: Config> =
		StorageDoubleMap<_, Twox64Concat, DatanetId, Blake2_128Concat, T::AccountId, StandingOf<T>>;

	/// Every standing in rank order: a datanet's keys iterate best first, ties by account.
	#[pallet::storage]
	pub type Ranked<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		DatanetId,
		Identity,
		(RankKey, T::AccountId),
		(),
		OptionQuery,
	>;

	/// How many of a datanet's contributors share each rank key.
	#[pallet::storage]
	pub type RankGroups<T: Config> =
		StorageDoubleMap<_, Twox64Concat, DatanetId, Identity, RankKey, u32, ValueQuery>;

	/// How many of a datanet's contributors fall in each of `RANK_BUCKETS` score ranges, best
	/// first: a rank is the buckets above plus the groups ahead in its own bucket.
	#[pallet::storage]
	pub type RankBuckets<T: Config> =
		StorageMap<_, Twox64Concat, DatanetId, [u32; RANK_BUCKETS], OptionQuery>;

	/// The datanets each account has a standing in.
	#[pallet::storage]
	pub type StandingIn<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Twox64Concat,
		DatanetId,
		(),
		OptionQuery,
	>;

	/// Standings with both acceptances and rejections: their scores rise as the rejections
	/// fade, so settlement re-ranks them each epoch.
	#[pallet::storage]
	pub type Fading<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		DatanetId,
		Blake2_128Concat,
		T::AccountId,
		(),
		OptionQuery,
	>;

	/// Where re-ranking of `Fading` stopped in an unfinished settlement: its last raw key.
	#[pallet::storage]
	pub type RerankCursor<T: Config> = StorageValue<_, BoundedVec<u8, ConstU32<256>>, OptionQuery>;

	/// What each datanet did in each unsettled epoch.
	#[pallet::storage]
	pub type Tallies<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		EpochIndex,
		Twox64Concat,
		DatanetId,
		EpochTally<BalanceOf<T>>,
		ValueQuery,
	>;

	/// Each contributor's accepted-this-epoch count and score, per unsettled epoch and
	/// datanet.
	#[pallet::storage]
	pub type ContributorShares<T: Config> = StorageNMap<
		_,
		(
			NMapKey<Twox64Concat, EpochIndex>,
			NMapKey<Twox64Concat, DatanetId>,
			NMapKey<Blake2_128Concat, T::AccountId>,
		),
		EpochShare,
	>;

	/// The stake each validator voted with the verdicts, per unsettled epoch and datanet.
	#[pallet::storage]
	pub type ValidatorShares<T: Config> = StorageNMap<
		_,
		(
			NMapKey<Twox64Concat, EpochIndex>,
			NMapKey<Twox64Concat, DatanetId>,
			NMapKey<Blake2_128Concat, T::AccountId>,
		),
		BalanceOf<T>,
		ValueQuery,
	>;

	/// The pools of the epoch being paid out.
	#[pallet::storage]
	pub type Pots<T: Config> =
		StorageDoubleMap<_, Twox64Concat, EpochIndex, Twox64Concat, DatanetId, Pot<BalanceOf<T>>>;

	/// Each datanet's undistributed pool: deposits, and parts no one earned yet.
	#[pallet::storage]
	pub type Pools<T: Config> = StorageMap<_, Twox64Concat, DatanetId, BalanceOf<T>, ValueQuery>;

	/// Rewards credited to each account and not claimed yet, by what earned them.
	#[pallet::storage]
	pub type Claimable<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, Claims<BalanceOf<T>>, ValueQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// The rules the chain starts with, if not `Config::DefaultParams`.
		pub params: Option<ParamsOf<T>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if let Some(params) = &self.params {
				Pallet::<T>::ensure_params(params)
					.expect("pallet-rewards genesis params are invalid");
				CurrentParams::<T>::put(params);
			}
			// The pot account never dies, so small credits and claims always go through.
			let pot = Pallet::<T>::account_id();
			if T::Currency::balance(&pot).is_zero() {
				T::Currency::mint_into(&pot, T::Currency::minimum_balance())
					.expect("minting the existential deposit succeeds at genesis");
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A new epoch began.
		EpochStarted {
			/// The new epoch.
			epoch: EpochIndex,
		},
		/// A datanet's pool was split for a finished epoch.
		PoolSplit {
			/// The finished epoch.
			epoch: EpochIndex,
			/// The datanet.
			datanet: DatanetId,
			/// Newly minted into the pool.
			minted: BalanceOf<T>,
			/// Shared by the contributors.
			contributors: BalanceOf<T>,
			/// Shared by the validators.
			validators: BalanceOf<T>,
			/// Credited to the owner.
			owner: BalanceOf<T>,
		},
		/// Every payout of an epoch has been credited.
		EpochSettled {
			/// The epoch.
			epoch: EpochIndex,
		},
		/// Someone added funds to a datanet's pool.
		Funded {
			/// Who paid.
			who: T::AccountId,
			/// The datanet.
			datanet: DatanetId,
			/// How much.
			amount: BalanceOf<T>,
		},
		/// An account took its credited rewards.
		Claimed {
			/// The account.
			who: T::AccountId,
			/// How much.
			amount: BalanceOf<T>,
			/// What earned it.
			by_source: Claims<BalanceOf<T>>,
		},
		/// Root changed the rules.
		ParamsChanged {
			/// The new rules.
			params: ParamsOf<T>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// There are no rewards to claim.
		NothingToClaim,
		/// No datanet has this identifier.
		UnknownDatanet,
		/// The amount must be more than zero.
		ZeroAmount,
		/// The shares must add up to 100%, and the epoch length and half-life must be at
		/// least 1.
		BadParams,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		/// Starts a new epoch when one is due, then does up to `MaxSettlementSteps` of the
		/// finished epochs' payouts.
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			Self::advance_epoch(now);
			let steps = Self::settle(T::MaxSettlementSteps::get());
			T::WeightInfo::on_initialize_idle()
				.saturating_add(T::WeightInfo::rerank(steps.reranked))
				.saturating_add(T::WeightInfo::open_pots(steps.opened))
				.saturating_add(T::WeightInfo::pay_contributors(steps.contributors))
				.saturating_add(T::WeightInfo::pay_validators(steps.validators))
				.saturating_add(T::WeightInfo::close_pots(steps.closed))
		}

		fn integrity_test() {
			assert!(
				Pallet::<T>::ensure_params(&T::DefaultParams::get()).is_ok(),
				"DefaultParams break the rules' invariants"
			);
			assert!(T::MaxSettlementSteps::get() > 0, "settlement must make progress");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Pays out everything credited to the caller, from every source.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::claim())]
		pub fn claim(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let by_source = Claimable::<T>::take(&who);
			let amount = by_source.total();
			ensure!(!amount.is_zero(), Error::<T>::NothingToClaim);
			T::Currency::transfer(&Self::account_id(), &who, amount, Preservation::Preserve)?;
			Self::deposit_event(Event::Claimed { who, amount, by_source });
			Ok(())
		}

		/// Adds `amount` from the caller to `datanet`'s pool. It is paid out with the next
		/// epoch in which the datanet reaches a verdict.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::fund())]
		pub fn fund(
			origin: OriginFor<T>,
			datanet: DatanetId,
			#[pallet::compact] amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_fund(&who, datanet, amount)?;
			Self::deposit_event(Event::Funded { who, datanet, amount });
			Ok(())
		}

		/// Replaces the published rules.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::set_params())]
		pub fn set_params(origin: OriginFor<T>, params: ParamsOf<T>) -> DispatchResult {
			ensure_root(origin)?;
			Self::ensure_params(&params)?;
			CurrentParams::<T>::put(params.clone());
			Self::deposit_event(Event::ParamsChanged { params });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// The account that holds the pools and unclaimed rewards.
		pub fn account_id() -> T::AccountId {
			T::PalletId::get().into_account_truncating()
		}
	}
}
