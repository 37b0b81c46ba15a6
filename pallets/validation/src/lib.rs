#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub use pallet::*;

mod functions;
pub mod types;
pub mod weights;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use types::*;
pub use weights::WeightInfo;

use codec::Encode;
use pallet_datanets::{ContributionId, ContributionStatus, DatanetId};
use polkadot_sdk::{frame_support, frame_system, sp_io, sp_runtime};

/// The commitment a validator publishes for `ballot`: `blake2_256(SCALE((ballot, salt, voter)))`.
///
/// The voter is inside the hash, so a commitment copied from another validator can never be
/// revealed by the copier.
pub fn commitment<AccountId: Encode>(
	ballot: &Ballot,
	salt: &Salt,
	voter: &AccountId,
) -> Commitment {
	sp_io::hashing::blake2_256(&(ballot, salt, voter).encode())
}

/// Told of each verdict, with the validators whose revealed ballots agreed with it and the
/// stake each voted with. Rewards pays them from this.
pub trait OnVerdict<AccountId, Balance> {
	/// Contribution `contribution` by `contributor` in `datanet` ended as `status`.
	fn on_verdict(
		contribution: ContributionId,
		datanet: DatanetId,
		contributor: &AccountId,
		status: ContributionStatus,
		agreeing: &[(AccountId, Balance)],
	);

	/// The most `on_verdict` costs with `agreeing` validators; `close` charges it.
	fn weight(agreeing: u32) -> frame_support::weights::Weight;
}

impl<AccountId, Balance> OnVerdict<AccountId, Balance> for () {
	fn on_verdict(
		_: ContributionId,
		_: DatanetId,
		_: &AccountId,
		_: ContributionStatus,
		_: &[(AccountId, Balance)],
	) {
	}

	fn weight(_: u32) -> frame_support::weights::Weight {
		frame_support::weights::Weight::zero()
	}
}

/// Tells both, in order: rewards and the models pallet's training-set log each hear every
/// verdict.
impl<AccountId, Balance, A, B> OnVerdict<AccountId, Balance> for (A, B)
where
	A: OnVerdict<AccountId, Balance>,
	B: OnVerdict<AccountId, Balance>,
{
	fn on_verdict(
		contribution: ContributionId,
		datanet: DatanetId,
		contributor: &AccountId,
		status: ContributionStatus,
		agreeing: &[(AccountId, Balance)],
	) {
		A::on_verdict(contribution, datanet, contributor, status, agreeing);
		B::on_verdict(contribution, datanet, contributor, status, agreeing);
	}

	fn weight(agreeing: u32) -> frame_support::weights::Weight {
		A::weight(agreeing).saturating_add(B::weight(agreeing))
	}
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
	use pallet_datanets::ContributionRegistry;

	/// The balance type of [`Config::Currency`].
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
	/// A validator record with this runtime's types.
	pub type ValidatorOf<T> =
		Validator<BalanceOf<T>, BlockNumberFor<T>, <T as Config>::MaxDatanetsPerValidator>;
	/// A poll with this runtime's types.
	pub type PollOf<T> =
		Poll<<T as frame_system::Config>::AccountId, BalanceOf<T>, <T as Config>::MaxVoters>;
	/// A verdict with this runtime's types.
	pub type VerdictOf<T> = Verdict<BalanceOf<T>, BlockNumberFor<T>>;
	/// The parameters with this runtime's types.
	pub type ParamsOf<T> = Params<BalanceOf<T>, BlockNumberFor<T>>;
	/// What the datanets pallet says of a contribution.
	pub type ContributionInfoOf<T> = pallet_datanets::ContributionInfo<
		<T as frame_system::Config>::AccountId,
		BlockNumberFor<T>,
	>;

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A validator's stake, bonded or unbonding.
		ValidatorStake,
	}

	/// Defaults for test runtimes, so a mock names only what it changes.
	pub mod config_preludes {
		use super::*;
		use frame_support::{derive_impl, parameter_types, register_default_impl};
		use sp_runtime::Perbill;

		/// The least stake per datanet in tests.
		pub const MIN_STAKE: u64 = 1_000;
		/// Blocks to commit after a submission, in tests.
		pub const COMMIT_PERIOD: u64 = 10;
		/// Blocks to reveal after the commit window, in tests.
		pub const REVEAL_PERIOD: u64 = 10;
		/// Blocks before unbonded stake is free, in tests.
		pub const UNBONDING_DELAY: u64 = 50;
		/// The most validators that may commit on one contribution, in tests.
		pub const MAX_VOTERS: u32 = 5;

		/// The test rules: short windows, a quorum of two, a two-thirds supermajority.
		pub fn test_params() -> Params<u64, u64> {
			Params {
				min_stake_per_datanet: MIN_STAKE,
				unbonding_delay: UNBONDING_DELAY,
				commit_period: COMMIT_PERIOD,
				reveal_period: REVEAL_PERIOD,
				quorum: 2,
				supermajority: Perbill::from_rational(2u32, 3u32),
				wrong_vote_slash: Perbill::from_percent(1),
				no_reveal_slash: Perbill::from_percent(5),
			}
		}

		parameter_types! {
			/// [`test_params`], as a `Get`.
			pub TestParams: Params<u64, u64> = test_params();
		}

		/// Short windows, for a test runtime whose balances and block numbers are `u64`.
		pub struct TestDefaultConfig;

		#[derive_impl(frame_system::config_preludes::TestDefaultConfig, no_aggregated_types)]
		impl frame_system::DefaultConfig for TestDefaultConfig {}

		#[register_default_impl(TestDefaultConfig)]
		impl DefaultConfig for TestDefaultConfig {
			#[inject_runtime_type]
			type RuntimeHoldReason = ();
			type OnVerdict = ();
			type DefaultParams = TestParams;
			type MaxDatanetsPerValidator = ConstU32<3>;
			type MaxVoters = ConstU32<MAX_VOTERS>;
			type WeightInfo = ();
		}
	}

	#[pallet::config(with_default)]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Holds stake, and burns it when slashed.
		#[pallet::no_default]
		type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
			+ Mutate<Self::AccountId>;

		/// The runtime's hold reasons, of which this pallet's are part.
		#[pallet::no_default_bounds]
		type RuntimeHoldReason: From<HoldReason>;

		/// The contributions being judged: read, and moved on to their verdict.
		#[pallet::no_default]
		type Contributions: ContributionRegistry<Self::AccountId, BlockNumberFor<Self>>;

		/// Told of every verdict.
		#[pallet::no_default_bounds]
		type OnVerdict: OnVerdict<Self::AccountId, BalanceOf<Self>>;

		/// The rules until genesis or root says otherwise. Must pass the checks of
		/// `set_params`.
		#[pallet::no_default_bounds]
		type DefaultParams: Get<ParamsOf<Self>>;

		/// The most datanets one validator serves at once.
		#[pallet::constant]
		type MaxDatanetsPerValidator: Get<u32>;

		/// The most validators that may commit on one contribution. Bounds the work of
		/// `close`; must be at least the quorum.
		#[pallet::constant]
		type MaxVoters: Get<u32>;

		/// Weights, from this pallet's benchmarks.
		type WeightInfo: WeightInfo;
	}

	/// The published rules: stake, windows, quorum and slashing shares.
	#[pallet::storage]
	pub type CurrentParams<T: Config> = StorageValue<_, ParamsOf<T>, ValueQuery, T::DefaultParams>;

	/// Every validator with stake held, bonded or unbonding.
	#[pallet::storage]
	pub type Validators<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, ValidatorOf<T>>;

	/// The open vote on each contribution that has at least one commitment.
	#[pallet::storage]
	pub type Polls<T: Config> = StorageMap<_, Twox64Concat, ContributionId, PollOf<T>>;

	/// Each validator's sealed (then revealed) ballot on an open contribution.
	#[pallet::storage]
	pub type Commits<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		ContributionId,
		Blake2_128Concat,
		T::AccountId,
		CommitRecord<BalanceOf<T>>,
	>;

	/// How each closed vote ended, with the reason for a rejection.
	#[pallet::storage]
	pub type Verdicts<T: Config> = StorageMap<_, Twox64Concat, ContributionId, VerdictOf<T>>;

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
					.expect("pallet-validation genesis params are invalid");
				CurrentParams::<T>::put(params);
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A validator added stake and chose the datanets it serves.
		Bonded {
			/// The validator.
			who: T::AccountId,
			/// Stake added.
			amount: BalanceOf<T>,
			/// All its bonded stake now.
			bonded: BalanceOf<T>,
			/// The datanets it now serves.
			datanets: Vec<DatanetId>,
		},
		/// Stake stopped voting and started its unbonding delay.
		Unbonded {
			/// The validator.
			who: T::AccountId,
			/// Stake moved to unbonding.
			amount: BalanceOf<T>,
			/// When it may be withdrawn.
			unlocks_at: BlockNumberFor<T>,
		},
		/// Unbonded stake was released to the validator.
		Withdrawn {
			/// The validator.
			who: T::AccountId,
			/// Stake released.
			amount: BalanceOf<T>,
		},
		/// A validator sealed its ballot on a contribution.
		Committed {
			/// The validator.
			who: T::AccountId,
			/// The contribution.
			contribution: ContributionId,
		},
		/// A validator opened its sealed ballot.
		Revealed {
			/// The validator.
			who: T::AccountId,
			/// The contribution.
			contribution: ContributionId,
			/// Its ballot.
			ballot: Ballot,
		},
		/// A vote closed.
		VerdictReached {
			/// The contribution.
			contribution: ContributionId,
			/// `Accepted`, `Rejected`, or `Expired` without quorum.
			status: ContributionStatus,
			/// For a rejection: why.
			reason: Option<Reason>,
		},
		/// A validator lost stake over a vote.
		Slashed {
			/// The validator.
			who: T::AccountId,
			/// The contribution voted on.
			contribution: ContributionId,
			/// Stake burned.
			amount: BalanceOf<T>,
			/// It voted against a supermajority (`false`: it committed and never revealed).
			revealed: bool,
		},
		/// Root changed the rules.
		ParamsChanged {
			/// The new rules.
			params: ParamsOf<T>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// `bond` needs at least one datanet.
		NoDatanets,
		/// More datanets than `MaxDatanetsPerValidator`, or one named twice.
		BadDatanetList,
		/// Bonded stake would be below `min_stake_per_datanet` × the datanets served.
		BelowMinimumStake,
		/// The account has no stake.
		NotValidator,
		/// Less is bonded than asked to unbond.
		InsufficientBond,
		/// No stake is unbonding.
		NothingToWithdraw,
		/// The unbonding delay has not passed.
		StillUnbonding,
		/// No contribution has this identifier.
		UnknownContribution,
		/// The contribution already has its verdict.
		NotPending,
		/// Validators cannot vote on their own contributions.
		OwnContribution,
		/// The validator does not serve the contribution's datanet.
		NotServingDatanet,
		/// The validator's bonded stake is below the minimum for the datanets it serves.
		UnderStaked,
		/// The commit window has closed.
		CommitWindowClosed,
		/// The validator already committed on this contribution.
		AlreadyCommitted,
		/// `MaxVoters` validators already committed on this contribution.
		TooManyVoters,
		/// The validator never committed on this contribution.
		NotCommitted,
		/// The validator already revealed.
		AlreadyRevealed,
		/// The reveal window opens when the commit window closes.
		RevealWindowNotOpen,
		/// The reveal window has closed.
		RevealWindowClosed,
		/// The ballot and salt do not hash to the validator's commitment.
		CommitmentMismatch,
		/// The reveal window is still open.
		PollStillOpen,
		/// The parameters break an invariant (a zero window or quorum, a quorum above
		/// `MaxVoters`, or a supermajority of half or less).
		BadParams,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(T::MaxVoters::get() > 0, "MaxVoters must be positive");
			assert!(
				T::MaxDatanetsPerValidator::get() > 0,
				"MaxDatanetsPerValidator must be positive"
			);
			assert!(
				Pallet::<T>::ensure_params(&T::DefaultParams::get()).is_ok(),
				"DefaultParams break the rules' invariants"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Adds `amount` to the caller's held stake and sets the datanets it serves.
		///
		/// The bonded total must cover `min_stake_per_datanet` for each datanet. `amount` may
		/// be zero, to change only the datanets.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::bond(datanets.len() as u32))]
		pub fn bond(
			origin: OriginFor<T>,
			datanets: Vec<DatanetId>,
			#[pallet::compact] amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let datanets = Self::bounded_datanets(datanets)?;
			let bonded = Self::do_bond(&who, datanets.clone(), amount)?;
			Self::deposit_event(Event::Bonded {
				who,
				amount,
				bonded,
				datanets: datanets.into_inner(),
			});
			Ok(())
		}

		/// Moves `amount` of bonded stake to unbonding: it stops voting at once, stays
		/// slashable, and can be withdrawn after `unbonding_delay` blocks. Unbonding more
		/// restarts the delay for all of it.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::unbond())]
		pub fn unbond(
			origin: OriginFor<T>,
			#[pallet::compact] amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let unlocks_at = Self::do_unbond(&who, amount)?;
			Self::deposit_event(Event::Unbonded { who, amount, unlocks_at });
			Ok(())
		}

		/// Releases all unbonded stake whose delay has passed.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::withdraw())]
		pub fn withdraw(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let amount = Self::do_withdraw(&who)?;
			Self::deposit_event(Event::Withdrawn { who, amount });
			Ok(())
		}

		/// Seals the caller's ballot on `contribution`, during its commit window. Make
		/// `commitment` with [`crate::commitment`] and keep the salt for the reveal.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::commit())]
		pub fn commit(
			origin: OriginFor<T>,
			contribution: ContributionId,
			commitment: Commitment,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_commit(&who, contribution, commitment)?;
			Self::deposit_event(Event::Committed { who, contribution });
			Ok(())
		}

		/// Opens the caller's sealed ballot, during the reveal window that follows the commit
		/// window.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::reveal())]
		pub fn reveal(
			origin: OriginFor<T>,
			contribution: ContributionId,
			ballot: Ballot,
			salt: Salt,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_reveal(&who, contribution, ballot, salt)?;
			Self::deposit_event(Event::Revealed { who, contribution, ballot });
			Ok(())
		}

		/// Closes the vote on `contribution` once its reveal window is over: records the
		/// verdict, moves the contribution on, and slashes where the rules say. Anyone may
		/// call it.
		#[pallet::call_index(5)]
		#[pallet::weight(Pallet::<T>::close_weight(T::MaxVoters::get()))]
		pub fn close(
			origin: OriginFor<T>,
			contribution: ContributionId,
		) -> DispatchResultWithPostInfo {
			ensure_signed(origin)?;
			let verdict = Self::do_close(contribution)?;
			Ok(Some(Self::close_weight(verdict.committed)).into())
		}

		/// Replaces the published rules.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::set_params())]
		pub fn set_params(origin: OriginFor<T>, params: ParamsOf<T>) -> DispatchResult {
			ensure_root(origin)?;
			Self::ensure_params(&params)?;
			CurrentParams::<T>::put(params.clone());
			Self::deposit_event(Event::ParamsChanged { params });
			Ok(())
		}
	}
}
