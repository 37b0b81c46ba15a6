//! Benchmarks for `pallet_validation`, run by `scripts/benchmark-pallets.sh` to produce
//! `weights.rs`. Each measures the worst case of its call.

use crate::*;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{fungible::Mutate, Get},
	BoundedVec,
};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use pallet_datanets::ContributionRegistry;
use polkadot_sdk::{frame_benchmarking, frame_system as system};
use sp_runtime::{traits::Bounded, Perbill};

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	// Small enough that many funded accounts never overflow total issuance.
	T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 1024u32.into());
	who
}

/// Rules whose minimum stake is small next to what `funded` accounts hold.
fn publish_params<T: Config>() -> ParamsOf<T> {
	let params = Params {
		min_stake_per_datanet: 1_000u32.into(),
		unbonding_delay: 10u32.into(),
		commit_period: 10u32.into(),
		reveal_period: 10u32.into(),
		quorum: 1,
		supermajority: Perbill::from_rational(2u32, 3u32),
		wrong_vote_slash: Perbill::from_percent(1),
		no_reveal_slash: Perbill::from_percent(5),
	};
	CurrentParams::<T>::put(params.clone());
	params
}

fn stake<T: Config>() -> BalanceOf<T> {
	1_000_000u32.into()
}

/// A validator bonded for `datanet`.
fn validator<T: Config>(index: u32, datanet: DatanetId) -> T::AccountId {
	let who = funded::<T>("validator", index);
	let datanets = BoundedVec::try_from(vec![datanet]).expect("one datanet fits");
	Pallet::<T>::do_bond(&who, datanets, stake::<T>()).expect("funded");
	who
}

/// A pending contribution and its datanet.
fn contribution<T: Config>() -> (ContributionId, DatanetId) {
	let contributor = funded::<T>("contributor", 0);
	let id = T::Contributions::create_for_benchmark(&contributor);
	let info = T::Contributions::contribution_info(id).expect("just created");
	(id, info.datanet)
}

fn ballot_of(index: u32) -> (Ballot, Salt) {
	(Ballot::Reject(Reason::Corrupt), [index as u8; 32])
}

fn go_to<T: Config>(block: BlockNumberFor<T>) {
	system::Pallet::<T>::set_block_number(block);
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn bond(d: Linear<1, { T::MaxDatanetsPerValidator::get() }>) {
		publish_params::<T>();
		let caller = funded::<T>("caller", 0);
		let datanets: Vec<DatanetId> = (0..d).collect();
		let amount = stake::<T>();

		#[extrinsic_call]
		_(RawOrigin::Signed(caller.clone()), datanets, amount);

		assert_eq!(Validators::<T>::get(&caller).map(|v| v.bonded), Some(amount));
	}

	#[benchmark]
	fn unbond() {
		publish_params::<T>();
		let caller = validator::<T>(0, 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller.clone()), 1u32.into());

		assert_eq!(Validators::<T>::get(&caller).map(|v| v.unbonding), Some(1u32.into()));
	}

	#[benchmark]
	fn withdraw() {
		let params = publish_params::<T>();
		let caller = validator::<T>(0, 0);
		Pallet::<T>::do_unbond(&caller, stake::<T>()).expect("bonded");
		go_to::<T>(system::Pallet::<T>::block_number() + params.unbonding_delay);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller.clone()));

		assert!(Validators::<T>::get(&caller).is_none());
	}

	#[benchmark]
	fn commit() {
		publish_params::<T>();
		let (id, datanet) = contribution::<T>();
		// The poll already holds all but one voter: the largest record to read and write.
		for index in 1..T::MaxVoters::get() {
			let voter = validator::<T>(index, datanet);
			let (ballot, salt) = ballot_of(index);
			Pallet::<T>::do_commit(&voter, id, commitment(&ballot, &salt, &voter)).expect("open");
		}
		let caller = validator::<T>(0, datanet);
		let (ballot, salt) = ballot_of(0);
		let sealed = commitment(&ballot, &salt, &caller);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller.clone()), id, sealed);

		assert!(Commits::<T>::contains_key(id, &caller));
	}

	#[benchmark]
	fn reveal() {
		let params = publish_params::<T>();
		let (id, datanet) = contribution::<T>();
		let mut voters = Vec::new();
		for index in 0..T::MaxVoters::get() {
			let voter = validator::<T>(index, datanet);
			let (ballot, salt) = ballot_of(index);
			Pallet::<T>::do_commit(&voter, id, commitment(&ballot, &salt, &voter)).expect("open");
			voters.push(voter);
		}
		go_to::<T>(system::Pallet::<T>::block_number() + params.commit_period + 1u32.into());
		let (ballot, salt) = ballot_of(0);

		#[extrinsic_call]
		_(RawOrigin::Signed(voters[0].clone()), id, ballot, salt);

		assert_eq!(Commits::<T>::get(id, &voters[0]).and_then(|c| c.revealed), Some(ballot));
	}

	/// `v` voters: three quarters reveal with the verdict, the rest stay silent and are
	/// slashed, so every voter costs a read and a write or a burn.
	#[benchmark]
	fn close(v: Linear<0, { T::MaxVoters::get() }>) {
		let params = publish_params::<T>();
		let (id, datanet) = contribution::<T>();
		let mut voters = Vec::new();
		for index in 0..v {
			let voter = validator::<T>(index, datanet);
			let (ballot, salt) = ballot_of(index);
			Pallet::<T>::do_commit(&voter, id, commitment(&ballot, &salt, &voter)).expect("open");
			voters.push(voter);
		}
		let submitted = system::Pallet::<T>::block_number();
		go_to::<T>(submitted + params.commit_period + 1u32.into());
		let revealing = (v * 3).div_ceil(4);
		for (index, voter) in voters.iter().enumerate().take(revealing as usize) {
			let (ballot, salt) = ballot_of(index as u32);
			Pallet::<T>::do_reveal(voter, id, ballot, salt).expect("in window");
		}
		go_to::<T>(submitted + params.commit_period + params.reveal_period + 1u32.into());
		let caller = funded::<T>("caller", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), id);

		assert!(Verdicts::<T>::contains_key(id));
	}

	#[benchmark]
	fn set_params() {
		let params = publish_params::<T>();

		#[extrinsic_call]
		_(RawOrigin::Root, params.clone());

		assert_eq!(CurrentParams::<T>::get(), params);
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::ExtBuilder::build(), crate::mock::Test);
}
