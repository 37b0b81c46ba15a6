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

use polkadot_sdk::{frame_support, frame_system, sp_runtime};

/// Signs vouchers for the benchmarks, with a key the runtime can use.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId, Signature> {
	/// A fresh account and its signature of `message`.
	fn sign(message: &[u8]) -> (AccountId, Signature);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		traits::fungible::{Inspect, Mutate, MutateHold},
	};
	use frame_system::pallet_prelude::*;
	use pallet_models::{JobId, JobRevenue};
	use pallet_rewards::RewardsLedger;
	use sp_runtime::{
		traits::{IdentifyAccount, Verify},
		Perbill,
	};

	/// The balance type of [`Config::Currency`].
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
	/// A channel with this runtime's types.
	pub type ChannelOf<T> =
		Channel<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A consumer's prepaid channel deposit, less what was settled from it.
		ChannelDeposit,
	}

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	/// Defaults for test runtimes, so a mock names only what it changes.
	pub mod config_preludes {
		use super::*;
		use frame_support::{
			derive_impl, parameter_types, register_default_impl, traits::ConstU64,
		};

		/// The smallest channel deposit in tests.
		pub const MIN_DEPOSIT: u64 = 1_000;
		/// Blocks an operator has to settle after a consumer asks to close, in tests.
		pub const CLOSING_PERIOD: u64 = 10;

		parameter_types! {
			/// The operator's part of each payment in tests: 20%.
			pub const OperatorShare: Perbill = Perbill::from_percent(20);
		}

		/// Small deposits and a short closing period, for a test runtime whose balances and
		/// block numbers are `u64`.
		pub struct TestDefaultConfig;

		#[derive_impl(frame_system::config_preludes::TestDefaultConfig, no_aggregated_types)]
		impl frame_system::DefaultConfig for TestDefaultConfig {}

		#[register_default_impl(TestDefaultConfig)]
		impl DefaultConfig for TestDefaultConfig {
			#[inject_runtime_type]
			type RuntimeHoldReason = ();
			type MinDeposit = ConstU64<MIN_DEPOSIT>;
			type ClosingPeriod = ConstU64<CLOSING_PERIOD>;
			type MaxShares = ConstU32<50>;
			type DefaultOperatorShare = OperatorShare;
			type WeightInfo = ();
		}
	}

	#[pallet::config(with_default)]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency deposits are held in and payments are made in.
		#[pallet::no_default]
		type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
			+ Mutate<Self::AccountId>;

		/// The overarching hold reason.
		#[pallet::no_default_bounds]
		type RuntimeHoldReason: From<HoldReason>;

		/// The committed jobs, which split what their use earns as their fee was split.
		#[pallet::no_default]
		type Jobs: JobRevenue<Self::AccountId, BalanceOf<Self>>;

		/// Credits the operator's part to its claimable balance.
		#[pallet::no_default]
		type Rewards: RewardsLedger<Self::AccountId, BalanceOf<Self>>;

		/// A consumer's signature of a voucher.
		#[pallet::no_default]
		type Signature: Verify<Signer = Self::Signer> + Parameter;

		/// What signs vouchers: it identifies as an account.
		#[pallet::no_default]
		type Signer: IdentifyAccount<AccountId = Self::AccountId>;

		/// The smallest deposit that opens a channel.
		#[pallet::constant]
		#[pallet::no_default_bounds]
		type MinDeposit: Get<BalanceOf<Self>>;

		/// Blocks the operator has to settle its last vouchers after the consumer asks to
		/// close, before the consumer takes the rest of the deposit back. Must be non-zero.
		#[pallet::constant]
		#[pallet::no_default_bounds]
		type ClosingPeriod: Get<BlockNumberFor<Self>>;

		/// The largest training set of a job (the models pallet's `MaxShares`): a settlement
		/// credits each member's contributor.
		#[pallet::constant]
		type MaxShares: Get<u32>;

		/// The operator's part of every payment until genesis or root says otherwise.
		type DefaultOperatorShare: Get<Perbill>;

		/// Weights, from this pallet's benchmarks.
		type WeightInfo: WeightInfo;

		/// Signs vouchers in the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		#[pallet::no_default]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId, Self::Signature>;
	}

	/// Each operator's price per token, in the smallest unit. Only operators with a price can
	/// be opened a channel to.
	#[pallet::storage]
	pub type Prices<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, BalanceOf<T>>;

	/// The identifier the next channel gets.
	#[pallet::storage]
	pub type NextChannelId<T> = StorageValue<_, ChannelId, ValueQuery>;

	/// Open channels.
	#[pallet::storage]
	pub type Channels<T: Config> = StorageMap<_, Twox64Concat, ChannelId, ChannelOf<T>>;

	/// The operator's part of every payment; the rest is split as the job's fee was
	/// (`pallet_models::CurrentFeeSplit`). A payment for the base model goes wholly to the
	/// operator.
	#[pallet::storage]
	pub type OperatorShare<T: Config> =
		StorageValue<_, Perbill, ValueQuery, T::DefaultOperatorShare>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// An operator set or withdrew its price.
		PriceSet {
			/// The operator.
			operator: T::AccountId,
			/// Per token; `None` when it stopped taking new channels.
			price: Option<BalanceOf<T>>,
		},
		/// A consumer opened a channel.
		ChannelOpened {
			/// The channel.
			channel: ChannelId,
			/// Who pays.
			consumer: T::AccountId,
			/// Who serves.
			operator: T::AccountId,
			/// The price per token it keeps.
			price: BalanceOf<T>,
			/// Held from the consumer.
			deposit: BalanceOf<T>,
		},
		/// A consumer added to a channel's deposit.
		ToppedUp {
			/// The channel.
			channel: ChannelId,
			/// Its whole deposit now.
			deposit: BalanceOf<T>,
		},
		/// The operator was paid with a voucher, and the payment split by the published rule.
		Settled {
			/// The channel.
			channel: ChannelId,
			/// The fine-tune's job, or `None` for the base model.
			job: Option<JobId>,
			/// The voucher's cumulative amount for this model.
			cumulative: BalanceOf<T>,
			/// What this settlement paid: the voucher's rise over the last one.
			amount: BalanceOf<T>,
			/// Onto the operator's claimable balance.
			operator_paid: BalanceOf<T>,
			/// Onto the trainer's claimable balance.
			trainer_paid: BalanceOf<T>,
			/// Into the datanets' pools.
			pools_paid: BalanceOf<T>,
			/// Onto the contributors' claimable balances, by the job's committed shares.
			contributors_paid: BalanceOf<T>,
		},
		/// The consumer asked to close; the operator may settle until `at`.
		Closing {
			/// The channel.
			channel: ChannelId,
			/// The last block the operator may settle in.
			at: BlockNumberFor<T>,
		},
		/// A channel closed and what was not settled went back to the consumer.
		Closed {
			/// The channel.
			channel: ChannelId,
			/// Settled to the operator over the channel's life.
			settled: BalanceOf<T>,
			/// Released to the consumer.
			refunded: BalanceOf<T>,
		},
		/// Root changed the operator's part.
		OperatorShareChanged {
			/// The new part.
			share: Perbill,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// A price must be more than zero.
		ZeroPrice,
		/// The operator has no price: it takes no channels.
		NotAnOperator,
		/// A consumer cannot open a channel to itself.
		OwnChannel,
		/// The deposit is below `MinDeposit`.
		DepositTooLow,
		/// The account cannot hold this much.
		InsufficientBalance,
		/// The amount must be more than zero.
		ZeroAmount,
		/// No open channel has this identifier.
		UnknownChannel,
		/// Only the channel's consumer may do this.
		NotConsumer,
		/// Only the channel's operator may settle.
		NotOperator,
		/// Only the channel's consumer or operator may close it.
		NotAParty,
		/// The channel is closing: it takes no more deposit.
		ChannelClosing,
		/// The closing period has not ended yet; the consumer may close after it.
		StillClosing,
		/// The closing period has ended: the operator can no longer settle.
		ClosingPeriodOver,
		/// The signature is not the channel's consumer's over this voucher on this chain.
		BadSignature,
		/// The voucher promises no more than was already settled for this model.
		VoucherNotNewer,
		/// The vouchers would pay more than the channel's deposit.
		ExceedsDeposit,
		/// The channel already pays for as many models as it can (16).
		TooManyModels,
		/// The job is not committed: it has no adapter to pay for.
		JobNotCommitted,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(!T::ClosingPeriod::get().is_zero(), "an operator needs a block to settle");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Sets the caller's price per token, for channels opened from now on; `None` stops new
		/// channels. Channels already open keep the price they opened with.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::set_price())]
		pub fn set_price(origin: OriginFor<T>, price: Option<BalanceOf<T>>) -> DispatchResult {
			let operator = ensure_signed(origin)?;
			match price {
				Some(price) => {
					ensure!(!price.is_zero(), Error::<T>::ZeroPrice);
					Prices::<T>::insert(&operator, price);
				},
				None => Prices::<T>::remove(&operator),
			}
			Self::deposit_event(Event::PriceSet { operator, price });
			Ok(())
		}

		/// Opens a channel to `operator` at its current price, holding `deposit`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::open())]
		pub fn open(
			origin: OriginFor<T>,
			operator: T::AccountId,
			#[pallet::compact] deposit: BalanceOf<T>,
		) -> DispatchResult {
			let consumer = ensure_signed(origin)?;
			let (channel, price) = Self::do_open(&consumer, &operator, deposit)?;
			Self::deposit_event(Event::ChannelOpened {
				channel,
				consumer,
				operator,
				price,
				deposit,
			});
			Ok(())
		}

		/// Adds `amount` to the deposit of the caller's channel.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::top_up())]
		pub fn top_up(
			origin: OriginFor<T>,
			channel: ChannelId,
			#[pallet::compact] amount: BalanceOf<T>,
		) -> DispatchResult {
			let consumer = ensure_signed(origin)?;
			let deposit = Self::do_top_up(&consumer, channel, amount)?;
			Self::deposit_event(Event::ToppedUp { channel, deposit });
			Ok(())
		}

		/// Pays the operator with the consumer's voucher: what it promises beyond the last
		/// voucher settled for the same model, split by the published rule. Only the operator
		/// settles, until the closing period ends.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::settle(T::MaxShares::get()))]
		pub fn settle(
			origin: OriginFor<T>,
			voucher: Voucher<BalanceOf<T>>,
			signature: T::Signature,
		) -> DispatchResultWithPostInfo {
			let operator = ensure_signed(origin)?;
			let paid = Self::do_settle(&operator, &voucher, &signature)?;
			Self::deposit_event(Event::Settled {
				channel: voucher.channel,
				job: voucher.job,
				cumulative: voucher.cumulative,
				amount: paid.amount,
				operator_paid: paid.operator,
				trainer_paid: paid.job.trainer,
				pools_paid: paid.job.pools,
				contributors_paid: paid.job.contributors,
			});
			Ok(Some(T::WeightInfo::settle(paid.members)).into())
		}

		/// Closes a channel. The operator closes at once. The consumer's first call starts the
		/// closing period, in which the operator may still settle; a call after it closes.
		/// Closing releases what was not settled to the consumer.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::close())]
		pub fn close(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_close(&who, channel)
		}

		/// Sets the operator's part of every payment.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::set_operator_share())]
		pub fn set_operator_share(origin: OriginFor<T>, share: Perbill) -> DispatchResult {
			ensure_root(origin)?;
			OperatorShare::<T>::put(share);
			Self::deposit_event(Event::OperatorShareChanged { share });
			Ok(())
		}
	}
}
