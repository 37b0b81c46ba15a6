//! Benchmarks for `pallet_inference`, run by `scripts/benchmark-pallets.sh` to produce
//! `weights.rs`. A settlement is measured at every size of the job's training set it splits
//! over, up to `MaxShares`, with a real signature checked.

use crate::*;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Get};
use frame_system::RawOrigin;
use pallet_models::JobRevenue;
use polkadot_sdk::frame_benchmarking;
use sp_runtime::{traits::Bounded, Perbill};

fn funded<T: Config>(who: &T::AccountId) {
	// Small enough that many funded accounts never overflow total issuance.
	T::Currency::set_balance(who, BalanceOf::<T>::max_value() / 1_000_000u32.into());
}

fn operator<T: Config>() -> T::AccountId {
	let operator: T::AccountId = account("operator", 0, 0);
	funded::<T>(&operator);
	Prices::<T>::insert(&operator, BalanceOf::<T>::from(1u32));
	operator
}

/// A channel from a consumer who can sign, with `deposit`.
fn channel_of<T: Config>(consumer: &T::AccountId, deposit: BalanceOf<T>) -> ChannelId {
	funded::<T>(consumer);
	let channel = NextChannelId::<T>::get();
	Pallet::<T>::do_open(consumer, &operator::<T>(), deposit).expect("a funded consumer opens");
	channel
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn set_price() {
		let operator: T::AccountId = account("operator", 0, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(operator.clone()), Some(BalanceOf::<T>::from(5u32)));
		assert!(Prices::<T>::contains_key(&operator));
	}

	#[benchmark]
	fn open() {
		let operator = operator::<T>();
		let consumer: T::AccountId = account("consumer", 0, 0);
		funded::<T>(&consumer);
		#[extrinsic_call]
		_(RawOrigin::Signed(consumer), operator, T::MinDeposit::get());
		assert!(Channels::<T>::contains_key(0));
	}

	#[benchmark]
	fn top_up() {
		let consumer: T::AccountId = account("consumer", 0, 0);
		let channel = channel_of::<T>(&consumer, T::MinDeposit::get());
		#[extrinsic_call]
		_(RawOrigin::Signed(consumer), channel, T::MinDeposit::get());
		let deposit = Channels::<T>::get(channel).expect("open").deposit;
		assert_eq!(deposit, T::MinDeposit::get() + T::MinDeposit::get());
	}

	#[benchmark]
	fn settle(s: Linear<1, { T::MaxShares::get() }>) {
		let job = T::Jobs::committed_for_benchmark(s);
		// An operator's part below 100%, so the job's split runs.
		OperatorShare::<T>::put(Perbill::from_percent(10));
		let deposit = T::MinDeposit::get() * 1_000u32.into();
		let voucher =
			Voucher { channel: NextChannelId::<T>::get(), job: Some(job), cumulative: deposit };
		// Signed as a browser wallet signs, so both forms are checked.
		let (consumer, signature) =
			T::BenchmarkHelper::sign(&wallet_wrapped(&Pallet::<T>::voucher_payload(&voucher)));
		let channel = channel_of::<T>(&consumer, deposit);
		let operator = Channels::<T>::get(channel).expect("open").operator;
		#[extrinsic_call]
		_(RawOrigin::Signed(operator), voucher, signature);
		assert_eq!(Channels::<T>::get(channel).expect("open").settled_total(), deposit);
	}

	#[benchmark]
	fn close() {
		let consumer: T::AccountId = account("consumer", 0, 0);
		let channel = channel_of::<T>(&consumer, T::MinDeposit::get());
		// The consumer's second call, after the period: the path that refunds.
		Pallet::<T>::do_close(&consumer, channel).expect("the consumer starts closing");
		let after =
			frame_system::Pallet::<T>::block_number() + T::ClosingPeriod::get() + 1u32.into();
		frame_system::Pallet::<T>::set_block_number(after);
		#[extrinsic_call]
		_(RawOrigin::Signed(consumer), channel);
		assert!(!Channels::<T>::contains_key(channel));
	}

	#[benchmark]
	fn set_operator_share() {
		#[extrinsic_call]
		_(RawOrigin::Root, Perbill::from_percent(30));
		assert_eq!(OperatorShare::<T>::get(), Perbill::from_percent(30));
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
