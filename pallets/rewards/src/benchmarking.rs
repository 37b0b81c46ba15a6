//! Benchmarks for `pallet_rewards`, run by `scripts/benchmark-pallets.sh` to produce
//! `weights.rs`. Settlement steps are measured with 10,000 contributors waiting in the epoch,
//! to show that a page costs the same however large the epoch is.

use crate::*;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Hooks};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use pallet_datanets::{ContributionRegistry, ContributionStatus};
use polkadot_sdk::frame_benchmarking;
use sp_arithmetic::{FixedU128, Perbill};
use sp_runtime::traits::{Bounded, Zero};

/// Contributors waiting in the epoch while a page of them is paid.
const EPOCH_CONTRIBUTORS: u32 = 10_000;

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	// Small enough that many funded accounts never overflow total issuance.
	T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 1024u32.into());
	who
}

/// `count` datanets, all owned by one account.
fn datanets<T: Config>(count: u32) -> Vec<DatanetId> {
	let owner = funded::<T>("owner", 0);
	(0..count)
		.map(|_| {
			let id = T::Datanets::create_for_benchmark(&owner);
			T::Datanets::contribution_info(id).expect("just created").datanet
		})
		.collect()
}

fn tally<T: Config>() -> EpochTally<BalanceOf<T>> {
	EpochTally { verdicts: 1, contributor_weight: 1_000_000_000, agreeing_stake: 1_000u32.into() }
}

/// A pot in epoch 0 of `datanet` for the payout steps to draw on, with the epoch finished.
fn open_pot<T: Config>(datanet: DatanetId) {
	let amount: BalanceOf<T> = 1_000_000u32.into();
	T::Currency::mint_into(&Pallet::<T>::account_id(), amount * 2u32.into()).expect("mints");
	Pots::<T>::insert(
		0,
		datanet,
		Pot {
			contributors: amount,
			validators: amount,
			unpaid: amount * 2u32.into(),
			tally: EpochTally {
				verdicts: EPOCH_CONTRIBUTORS,
				contributor_weight: EPOCH_CONTRIBUTORS as u128 * 1_000_000_000,
				agreeing_stake: (EPOCH_CONTRIBUTORS * 1_000).into(),
			},
		},
	);
	CurrentEpoch::<T>::put(1);
}

#[benchmarks]
mod benchmarks {
	use super::*;

	/// A block that starts an epoch and settles an empty one: every phase change.
	#[benchmark]
	fn on_initialize_idle() {
		let length = Pallet::<T>::params().epoch_length;
		let now: BlockNumberFor<T> = length.into();
		#[block]
		{
			Pallet::<T>::on_initialize(now);
		}
		assert_eq!(CurrentEpoch::<T>::get(), 1);
		assert_eq!(Unsettled::<T>::get(), 1);
	}

	/// Re-ranking `n` standings whose rejection faded with the new epoch, while the rest of
	/// 10,000 wait: each moves in the rank index.
	#[benchmark]
	fn rerank(n: Linear<1, 1_000>) {
		let datanet = datanets::<T>(1)[0];
		for index in 0..EPOCH_CONTRIBUTORS {
			let who: T::AccountId = account("contributor", index, 0);
			for status in [ContributionStatus::Accepted, ContributionStatus::Rejected] {
				Pallet::<T>::record_verdict(datanet, &who, status, &[]);
			}
		}
		CurrentEpoch::<T>::put(1);
		#[block]
		{
			Pallet::<T>::rerank(n);
		}
		let reranked = Standings::<T>::iter_prefix_values(datanet)
			.filter(|standing| standing.ranked_at == 1)
			.count();
		assert_eq!(reranked as u32, n);
	}

	/// Splitting `n` datanets' pools: issuance minted, owner credited. The weight is linear in
	/// `n`; the range stops at the daily file cap of the one account that makes the datanets.
	#[benchmark]
	fn open_pots(n: Linear<1, 20>) {
		for datanet in datanets::<T>(n) {
			Tallies::<T>::insert(0, datanet, tally::<T>());
		}
		CurrentEpoch::<T>::put(1);
		#[block]
		{
			Pallet::<T>::open_pots(0, n);
		}
		assert_eq!(Pots::<T>::iter_prefix(0).count() as u32, n);
	}

	/// Crediting `n` contributors while the rest of 10,000 wait.
	#[benchmark]
	fn pay_contributors(n: Linear<1, 1_000>) {
		let datanet = datanets::<T>(1)[0];
		open_pot::<T>(datanet);
		let share = EpochShare { accepted: 1, score: Perbill::one() };
		for index in 0..EPOCH_CONTRIBUTORS {
			let who: T::AccountId = account("contributor", index, 0);
			ContributorShares::<T>::insert((0, datanet, &who), share);
			Standings::<T>::insert(datanet, &who, Standing::default());
		}
		#[block]
		{
			Pallet::<T>::pay_contributors(0, n);
		}
		assert_eq!(
			ContributorShares::<T>::iter_prefix((0,)).count() as u32,
			EPOCH_CONTRIBUTORS - n
		);
	}

	/// Crediting `n` validators.
	#[benchmark]
	fn pay_validators(n: Linear<1, 1_000>) {
		let datanet = datanets::<T>(1)[0];
		open_pot::<T>(datanet);
		for index in 0..n {
			let who: T::AccountId = account("validator", index, 0);
			ValidatorShares::<T>::insert((0, datanet, &who), BalanceOf::<T>::from(1_000u32));
		}
		#[block]
		{
			Pallet::<T>::pay_validators(0, n);
		}
		assert!(ValidatorShares::<T>::iter_prefix((0,)).next().is_none());
	}

	/// Returning `n` pots' dust to their pools.
	#[benchmark]
	fn close_pots(n: Linear<1, 1_000>) {
		for datanet in 0..n {
			Pots::<T>::insert(0, datanet, Pot::default());
		}
		CurrentEpoch::<T>::put(1);
		#[block]
		{
			Pallet::<T>::close_pots(0, n);
		}
		assert!(Pots::<T>::iter_prefix(0).next().is_none());
	}

	/// A rejection of a contributor already paid this epoch, with `v` agreeing validators: its
	/// old rejections decay, it moves in the rank index and starts fading.
	#[benchmark]
	fn record_verdict(v: Linear<0, 64>) {
		let datanet = datanets::<T>(1)[0];
		let contributor: T::AccountId = account("contributor", 0, 0);
		for _ in 0..5 {
			Pallet::<T>::record_verdict(datanet, &contributor, ContributionStatus::Accepted, &[]);
		}
		CurrentEpoch::<T>::put(1);
		ContributorShares::<T>::insert((1, datanet, &contributor), EpochShare::default());
		let agreeing: Vec<_> = (0..v)
			.map(|index| {
				(account::<T::AccountId>("validator", index, 0), BalanceOf::<T>::from(1_000u32))
			})
			.collect();
		#[block]
		{
			Pallet::<T>::record_verdict(
				datanet,
				&contributor,
				ContributionStatus::Rejected,
				&agreeing,
			);
		}
		let standing = Standings::<T>::get(datanet, &contributor).expect("recorded");
		assert_eq!((standing.accepted, standing.rejected), (5, FixedU128::from_u32(1)));
		assert!(Fading::<T>::contains_key(datanet, &contributor));
	}

	#[benchmark]
	fn claim() {
		let who = funded::<T>("claimer", 0);
		let amount: BalanceOf<T> = 1_000_000u32.into();
		T::Currency::mint_into(&Pallet::<T>::account_id(), amount * 2u32.into()).expect("mints");
		// Every source credited: the claim's one read and write cost the same either way.
		let claims = Claims {
			contributions: amount / 5u32.into(),
			validation: amount / 5u32.into(),
			ownership: amount / 5u32.into(),
			training: amount / 5u32.into(),
			inference: amount / 5u32.into(),
		};
		Claimable::<T>::insert(&who, claims);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(Claimable::<T>::get(&who).total().is_zero());
	}

	#[benchmark]
	fn fund() {
		let datanet = datanets::<T>(1)[0];
		let who = funded::<T>("funder", 0);
		let amount: BalanceOf<T> = 1_000_000u32.into();
		#[extrinsic_call]
		_(RawOrigin::Signed(who), datanet, amount);
		assert_eq!(Pools::<T>::get(datanet), amount);
	}

	#[benchmark]
	fn set_params() {
		let params = Pallet::<T>::params();
		#[extrinsic_call]
		_(RawOrigin::Root, params.clone());
		assert_eq!(Pallet::<T>::params(), params);
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
