//! Benchmarks for `pallet_models`, run by `scripts/benchmark-pallets.sh` to produce
//! `weights.rs`. Each call is measured at the bound of what it iterates over: datanets per job,
//! weight files, adapter bytes, shares in a commit, leases ending in a block.

use crate::*;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Get, Hooks};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use pallet_datanets::{ContributionRegistry, ContributionStatus, DatanetId};
use polkadot_sdk::frame_benchmarking;
use provenant_jobspec::{Family, HyperParams};
use sp_runtime::traits::Bounded;

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	// Small enough that thousands of funded accounts never overflow total issuance.
	T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 1_000_000u32.into());
	who
}

/// A text datanet with `accepted` contributions in its log, by distinct contributors.
fn datanet_with<T: Config>(accepted: u32) -> DatanetId {
	let owner = funded::<T>("owner", 0);
	let first = T::Datanets::create_for_benchmark(&owner);
	let datanet = T::Datanets::contribution_info(first).expect("just created").datanet;
	T::Datanets::set_status(first, ContributionStatus::Rejected).expect("pending");
	for seed in 0..accepted {
		let contributor = funded::<T>("contributor", seed);
		let id = T::Datanets::submit_for_benchmark(&contributor, datanet, seed);
		T::Datanets::set_status(id, ContributionStatus::Accepted).expect("pending");
		Pallet::<T>::log_accepted(datanet, id);
	}
	datanet
}

fn model<T: Config>() -> ModelId {
	let owner = funded::<T>("model-owner", 0);
	Pallet::<T>::do_register_model(
		owner,
		Family::Llama,
		b"benchmark".to_vec(),
		alloc::vec![[1; 32]],
		[2; 32],
		4096,
		Vec::new(),
		Vec::new(),
	)
	.expect("a funded owner registers")
}

fn job<T: Config>(datanets: Vec<DatanetId>) -> (T::AccountId, JobId) {
	let creator = funded::<T>("creator", 0);
	let params = HyperParams::defaults(Family::Llama);
	let (job, _) = Pallet::<T>::do_create_job(
		creator.clone(),
		model::<T>(),
		datanets,
		params,
		T::MinJobFee::get(),
	)
	.expect("a valid job");
	(creator, job)
}

fn claimed<T: Config>(job: JobId) -> T::AccountId {
	let worker = funded::<T>("worker", 0);
	Pallet::<T>::do_bond(&worker, T::MinWorkerBond::get()).expect("funded");
	Pallet::<T>::do_claim(&worker, job).expect("open");
	worker
}

fn adapter_bytes(len: u32) -> Vec<u8> {
	(0..len).map(|i| i as u8).collect()
}

/// A claimed job over `s` contributions with its adapter published, and the outcome and
/// attributed shares (the costlier check: they must add up to one) its worker commits.
fn ready_to_commit<T: Config>(s: u32) -> (T::AccountId, JobId, Outcome, Vec<Share>) {
	let (_, job) = job::<T>(alloc::vec![datanet_with::<T>(s)]);
	let worker = claimed::<T>(job);
	frame_system::Pallet::<T>::set_extrinsic_index(1);
	let adapter = adapter_bytes(1024);
	Pallet::<T>::do_publish_adapter(&worker, job, Vec::new(), &adapter).expect("holder");
	let shares: Vec<Share> = Pallet::<T>::training_set(job, 0, s)
		.iter()
		.enumerate()
		.map(|(i, member)| Share {
			contribution: member.entry.contribution,
			weight: if i == 0 { SHARES_WHOLE - (u64::from(s) - 1) } else { 1 },
		})
		.collect();
	let outcome = Outcome {
		adapter: sp_io::hashing::sha2_256(&adapter),
		adapter_size: 1024,
		training_root: Jobs::<T>::get(job).expect("created").training.root,
		train_loss: 1,
		eval_loss: Some(1),
		tokens: 1,
		steps: 1,
		shares_root: merkle::root_of(
			shares.iter().map(|share| merkle::share_leaf(share.contribution, share.weight)),
		),
		attribution: Attribution::Influence {
			projection_dim: 8192,
			projection_seed: 0,
			checkpoints: 3,
			probes: 1,
		},
	};
	(worker, job, outcome, shares)
}

/// A committed job over `s` contributions, each by its own contributor.
pub(crate) fn committed<T: Config>(s: u32) -> JobId {
	let (worker, job, outcome, shares) = ready_to_commit::<T>(s);
	Pallet::<T>::do_commit(&worker, job, outcome, shares).expect("a valid commit");
	job
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn register_model(w: Linear<1, 64>) {
		let owner = funded::<T>("model-owner", 0);
		let weights = (0..w).map(|i| [i as u8; 32]).collect::<Vec<_>>();
		#[extrinsic_call]
		_(
			RawOrigin::Signed(owner),
			Family::Llama,
			alloc::vec![b'n'; 64],
			weights,
			[0; 32],
			4096,
			alloc::vec![b'l'; 256],
			alloc::vec![b's'; 256],
		);
		assert!(BaseModels::<T>::contains_key(0));
	}

	#[benchmark]
	fn retire_model() {
		let model = model::<T>();
		let owner = BaseModels::<T>::get(model).expect("registered").owner;
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), model);
		assert!(BaseModels::<T>::get(model).expect("kept").retired);
	}

	#[benchmark]
	fn create_job(d: Linear<1, 8>) {
		let datanets: Vec<_> = (0..d).map(|_| datanet_with::<T>(1)).collect();
		let model = model::<T>();
		let creator = funded::<T>("creator", 0);
		#[extrinsic_call]
		_(
			RawOrigin::Signed(creator),
			model,
			datanets,
			HyperParams::defaults(Family::Llama),
			T::MinJobFee::get(),
		);
		assert_eq!(Jobs::<T>::get(0).expect("created").training.size, d as u64);
	}

	/// The costlier case: stopping a claimed job, which also pays its worker.
	#[benchmark]
	fn cancel_job() {
		let (creator, job) = job::<T>(alloc::vec![datanet_with::<T>(1)]);
		let worker = claimed::<T>(job);
		#[extrinsic_call]
		_(RawOrigin::Signed(creator), job);
		assert_eq!(Jobs::<T>::get(job).expect("kept").state, JobState::Cancelled);
		assert_eq!(Workers::<T>::get(&worker).expect("bonded").claims, 0);
	}

	#[benchmark]
	fn bond() {
		let worker = funded::<T>("worker", 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(worker.clone()), T::MinWorkerBond::get());
		assert!(Workers::<T>::contains_key(&worker));
	}

	#[benchmark]
	fn unbond() {
		let worker = funded::<T>("worker", 0);
		Pallet::<T>::do_bond(&worker, T::MinWorkerBond::get()).expect("funded");
		#[extrinsic_call]
		_(RawOrigin::Signed(worker.clone()), T::MinWorkerBond::get());
		assert!(!Workers::<T>::contains_key(&worker));
	}

	#[benchmark]
	fn claim() {
		let (_, job) = job::<T>(alloc::vec![datanet_with::<T>(1)]);
		let worker = funded::<T>("worker", 0);
		Pallet::<T>::do_bond(&worker, T::MinWorkerBond::get()).expect("funded");
		#[extrinsic_call]
		_(RawOrigin::Signed(worker), job);
		assert_eq!(Jobs::<T>::get(job).expect("kept").state.status(), JobStatus::Claimed);
	}

	#[benchmark]
	fn extend() {
		let (_, job) = job::<T>(alloc::vec![datanet_with::<T>(1)]);
		let worker = claimed::<T>(job);
		frame_system::Pallet::<T>::set_block_number(2u32.into());
		#[extrinsic_call]
		_(RawOrigin::Signed(worker), job);
		let JobState::Claimed { until, .. } = Jobs::<T>::get(job).expect("kept").state else {
			panic!("still claimed")
		};
		assert_eq!(until, BlockNumberFor::<T>::from(2u32) + LeasePeriod::<T>::get());
	}

	#[benchmark]
	fn publish_adapter(b: Linear<1, { T::MaxAdapterBytes::get() }>) {
		let (_, job) = job::<T>(alloc::vec![datanet_with::<T>(1)]);
		let worker = claimed::<T>(job);
		frame_system::Pallet::<T>::set_extrinsic_index(1);
		#[extrinsic_call]
		_(RawOrigin::Signed(worker), job, alloc::vec![b'c'; 4096], adapter_bytes(b));
		assert_eq!(Adapters::<T>::get(job).expect("published").size, b);
	}

	#[benchmark]
	fn commit(s: Linear<1, { T::MaxShares::get() }>) {
		let (worker, job, outcome, shares) = ready_to_commit::<T>(s);
		#[extrinsic_call]
		_(RawOrigin::Signed(worker), job, outcome, shares);
		assert_eq!(Jobs::<T>::get(job).expect("kept").state.status(), JobStatus::Committed);
	}

	#[benchmark]
	fn set_fee_split() {
		let split = T::DefaultFeeSplit::get();
		#[extrinsic_call]
		_(RawOrigin::Root, split);
		assert_eq!(CurrentFeeSplit::<T>::get(), split);
	}

	#[benchmark]
	fn set_lease_period() {
		let blocks = LeasePeriod::<T>::get() + 1u32.into();
		#[extrinsic_call]
		_(RawOrigin::Root, blocks);
		assert_eq!(LeasePeriod::<T>::get(), blocks);
	}

	#[benchmark]
	fn expire_leases(n: Linear<1, { T::MaxLeasesPerBlock::get() }>) {
		let datanet = datanet_with::<T>(1);
		let worker = funded::<T>("worker", 0);
		Pallet::<T>::do_bond(&worker, T::MinWorkerBond::get()).expect("funded");
		for _ in 0..n {
			let (_, job) = job::<T>(alloc::vec![datanet]);
			Pallet::<T>::do_claim(&worker, job).expect("open");
		}
		let check =
			frame_system::Pallet::<T>::block_number() + LeasePeriod::<T>::get() + 1u32.into();
		#[block]
		{
			Pallet::<T>::on_initialize(check);
		}
		assert_eq!(Workers::<T>::get(&worker).expect("bonded").claims, 0);
	}

	#[benchmark]
	fn log_accepted() {
		let datanet = datanet_with::<T>(0);
		let contributor = funded::<T>("contributor", 0);
		let id = T::Datanets::submit_for_benchmark(&contributor, datanet, u32::MAX);
		T::Datanets::set_status(id, ContributionStatus::Accepted).expect("pending");
		// All low bits set: the append hashes up every level.
		let length = (1u64 << 31) - 1;
		LogLength::<T>::insert(datanet, length);
		Frontiers::<T>::insert(datanet, [[7; 32]; merkle::DEPTH]);
		#[block]
		{
			Pallet::<T>::log_accepted(datanet, id);
		}
		assert_eq!(LogLength::<T>::get(datanet), length + 1);
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
