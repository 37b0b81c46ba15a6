//! Unit tests: every call's effect and each of its refusals, the escrow and the fee split to the
//! unit, leases that run out, and the training-set log with its proofs. Every test ends with
//! the pallets' invariants checked (`mock::build_and_execute`).

use crate::{mock::*, *};
use frame_support::{
	assert_noop, assert_ok,
	traits::fungible::{Inspect, InspectHold},
};
use pallet_datanets::ContributionStatus;
use pallet_datanets::DatanetId;
use polkadot_sdk::{frame_support, sp_runtime::DispatchError};
use provenant_jobspec::{Family, Field, HyperParams};

fn signed(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

fn escrow(who: AccountId) -> Balance {
	Balances::balance_on_hold(&HoldReason::JobEscrow.into(), &who)
}

fn bonded(who: AccountId) -> Balance {
	Balances::balance_on_hold(&HoldReason::WorkerBond.into(), &who)
}

/// A model, two accepted contributions (Alice's, Bob's) and a job with `fee` on them.
fn job_with_two_contributions(fee: Balance) -> (ModelId, JobId) {
	let model = register_llama();
	accepted(ALICE, "the first accepted text");
	accepted(BOB, "the second accepted text");
	(model, create_job(model, fee))
}

mod models {
	use super::*;

	#[test]
	fn registering_holds_the_deposit_and_records_every_field() {
		build_and_execute(|| {
			let model = register_llama();
			let record = BaseModels::<Test>::get(model).unwrap();
			assert_eq!(record.family, Family::Llama);
			assert_eq!(record.name.to_vec(), b"SmolLM2-135M".to_vec());
			assert_eq!(record.weights.to_vec(), vec![[1; 32]]);
			assert_eq!((record.tokenizer, record.max_positions), ([2; 32], 2048));
			assert_eq!(record.deposit, MODEL_DEPOSIT);
			assert!(!record.retired);
			assert_eq!(
				Balances::balance_on_hold(&HoldReason::ModelDeposit.into(), &OWNER),
				MODEL_DEPOSIT
			);
			System::assert_last_event(
				Event::ModelRegistered { model, owner: OWNER, family: Family::Llama }.into(),
			);
		});
	}

	#[test]
	fn bad_registrations_are_refused_by_name() {
		build_and_execute(|| {
			let register = |who, name: &[u8], weights: Vec<Sha256>, positions, licence: Vec<u8>| {
				Models::register_model(
					signed(who),
					Family::Gpt2,
					name.to_vec(),
					weights,
					[0; 32],
					positions,
					licence,
					vec![],
				)
			};
			assert_noop!(register(OWNER, b"", vec![[1; 32]], 1024, vec![]), Error::<Test>::BadName);
			assert_noop!(
				register(OWNER, &[b'x'; 65], vec![[1; 32]], 1024, vec![]),
				Error::<Test>::BadName
			);
			assert_noop!(
				register(OWNER, b"gpt2", vec![], 1024, vec![]),
				Error::<Test>::NoWeightFiles
			);
			assert_noop!(
				register(OWNER, b"gpt2", vec![[1; 32]; 65], 1024, vec![]),
				Error::<Test>::TooManyWeightFiles
			);
			assert_noop!(
				register(OWNER, b"gpt2", vec![[1; 32]], 1, vec![]),
				Error::<Test>::TooFewPositions
			);
			assert_noop!(
				register(OWNER, b"gpt2", vec![[1; 32]], 1024, vec![b'x'; 257]),
				Error::<Test>::TextTooLong
			);
			assert_noop!(
				register(POOR, b"gpt2", vec![[1; 32]], 1024, vec![]),
				Error::<Test>::InsufficientBalance
			);
		});
	}

	#[test]
	fn only_the_owner_retires_once_and_existing_jobs_go_on() {
		build_and_execute(|| {
			let (model, job) = job_with_two_contributions(MIN_FEE);
			assert_noop!(Models::retire_model(signed(ALICE), model), Error::<Test>::NotModelOwner);
			assert_noop!(Models::retire_model(signed(OWNER), 9), Error::<Test>::UnknownModel);
			assert_ok!(Models::retire_model(signed(OWNER), model));
			System::assert_last_event(Event::ModelRetired { model }.into());
			assert_noop!(Models::retire_model(signed(OWNER), model), Error::<Test>::ModelRetired);
			assert_noop!(
				Models::create_job(signed(BUILDER), model, vec![TEXT], params(), MIN_FEE),
				Error::<Test>::ModelRetired
			);
			// The job from before retirement is still claimed and committed.
			bond(WORKER);
			assert_ok!(Models::claim(signed(WORKER), job));
			publish(WORKER, job);
			let shares = shares(job, &[1, 1]);
			assert_ok!(Models::commit(signed(WORKER), job, outcome(job, &shares), shares));
		});
	}
}

mod jobs {
	use super::*;

	#[test]
	fn a_job_holds_its_fee_and_fixes_the_training_set() {
		build_and_execute(|| {
			let (model, job) = job_with_two_contributions(5_000);
			let record = Jobs::<Test>::get(job).unwrap();
			assert_eq!(escrow(BUILDER), 5_000);
			assert_eq!(
				(record.model, record.fee, record.state.clone()),
				(model, 5_000, JobState::Open)
			);
			assert_eq!(record.training.size, 2);
			let members = Models::training_set(job, 0, 10);
			let leaves: Vec<_> = members.iter().map(|member| member.entry.leaf()).collect();
			let part = SetPart { datanet: TEXT, count: 2, root: merkle::root_of(leaves) };
			assert_eq!(record.training.parts.to_vec(), vec![part]);
			assert_eq!(record.training.root, merkle::set_root(&[part]));
			System::assert_last_event(
				Event::JobCreated {
					job,
					creator: BUILDER,
					model,
					fee: 5_000,
					training_root: record.training.root,
					size: 2,
				}
				.into(),
			);
		});
	}

	#[test]
	fn bad_jobs_are_refused_by_name_and_change_nothing() {
		build_and_execute(|| {
			let model = register_llama();
			let create = |datanets: Vec<DatanetId>, params, fee| {
				Models::create_job(signed(BUILDER), model, datanets, params, fee)
			};
			assert_noop!(create(vec![TEXT], params(), MIN_FEE), Error::<Test>::EmptyTrainingSet);
			accepted(ALICE, "some text");
			assert_noop!(
				Models::create_job(signed(BUILDER), 7, vec![TEXT], params(), MIN_FEE),
				Error::<Test>::UnknownModel
			);
			assert_noop!(create(vec![], params(), MIN_FEE), Error::<Test>::NoDatanets);
			assert_noop!(
				create(vec![TEXT, TEXT], params(), MIN_FEE),
				Error::<Test>::DuplicateDatanet
			);
			assert_noop!(
				create((0..9).collect(), params(), MIN_FEE),
				Error::<Test>::TooManyDatanets
			);
			assert_noop!(create(vec![TEXT, 5], params(), MIN_FEE), Error::<Test>::UnknownDatanet);
			assert_noop!(create(vec![IMAGES], params(), MIN_FEE), Error::<Test>::NotATextDatanet);
			let long = HyperParams { cutoff_len: 4096, ..params() };
			assert_noop!(
				create(vec![TEXT], long, MIN_FEE),
				Error::<Test>::InvalidHyperParameter(Field::CutoffLen)
			);
			let qlora3 =
				HyperParams { method: provenant_jobspec::Method::Qlora { bits: 3 }, ..params() };
			assert_noop!(
				create(vec![TEXT], qlora3, MIN_FEE),
				Error::<Test>::InvalidHyperParameter(Field::Bits)
			);
			let gpt2_targets = HyperParams { targets: Family::Gpt2.default_targets(), ..params() };
			assert_noop!(
				create(vec![TEXT], gpt2_targets, MIN_FEE),
				Error::<Test>::InvalidHyperParameter(Field::TargetModules)
			);
			assert_noop!(create(vec![TEXT], params(), MIN_FEE - 1), Error::<Test>::FeeTooLow);
			assert_noop!(
				create(vec![TEXT], params(), INITIAL_BALANCE + 1),
				Error::<Test>::InsufficientBalance
			);
		});
	}

	#[test]
	fn a_training_set_larger_than_a_commit_can_list_is_refused() {
		build_and_execute(|| {
			let model = register_llama();
			for i in 0..=MAX_SHARES {
				accepted(ALICE, &format!("text number {i}"));
			}
			assert_noop!(
				Models::create_job(signed(BUILDER), model, vec![TEXT], params(), MIN_FEE),
				Error::<Test>::TrainingSetTooLarge
			);
		});
	}

	#[test]
	fn only_the_creator_cancels_an_open_job_and_gets_the_fee_back() {
		build_and_execute(|| {
			let (_, job) = job_with_two_contributions(5_000);
			let before = Balances::balance(&BUILDER);
			assert_noop!(Models::cancel_job(signed(ALICE), job), Error::<Test>::NotJobCreator);
			assert_noop!(Models::cancel_job(signed(BUILDER), 9), Error::<Test>::UnknownJob);
			assert_ok!(Models::cancel_job(signed(BUILDER), job));
			assert_eq!((escrow(BUILDER), Balances::balance(&BUILDER)), (0, before + 5_000));
			assert_eq!(Jobs::<Test>::get(job).unwrap().state, JobState::Cancelled);
			assert_noop!(Models::cancel_job(signed(BUILDER), job), Error::<Test>::JobOver);
			bond(WORKER);
			assert_noop!(Models::claim(signed(WORKER), job), Error::<Test>::JobNotOpen);
		});
	}

	#[test]
	fn stopping_a_claimed_job_pays_its_worker_the_trainers_part_and_returns_the_rest() {
		build_and_execute(|| {
			let (_, job) = job_with_two_contributions(5_000);
			bond(WORKER);
			assert_ok!(Models::claim(signed(WORKER), job));
			publish(WORKER, job);
			let before = Balances::balance(&BUILDER);
			assert_noop!(Models::cancel_job(signed(WORKER), job), Error::<Test>::NotJobCreator);
			assert_ok!(Models::cancel_job(signed(BUILDER), job));
			// Trainer 60% of 5,000 to the worker, as training; the other 2,000 come back.
			System::assert_last_event(
				Event::JobStopped { job, worker: WORKER, paid: 3_000 }.into(),
			);
			assert_eq!((escrow(BUILDER), Balances::balance(&BUILDER)), (0, before + 2_000));
			assert_eq!(pallet_rewards::Claimable::<Test>::get(WORKER).training, 3_000);
			assert_eq!(Jobs::<Test>::get(job).unwrap().state, JobState::Cancelled);
			assert_eq!(Adapters::<Test>::get(job), None);
			// The worker holds no lease any more, so it may unbond, and can commit nothing.
			assert_eq!(Workers::<Test>::get(WORKER).unwrap().claims, 0);
			let shares = shares(job, &[1, 1]);
			assert_noop!(
				Models::commit(signed(WORKER), job, outcome(job, &shares), shares),
				Error::<Test>::NotLeaseHolder
			);
			assert_noop!(Models::extend(signed(WORKER), job), Error::<Test>::NotLeaseHolder);
			assert_noop!(Models::cancel_job(signed(BUILDER), job), Error::<Test>::JobOver);
			// The lease's queued check neither slashes nor re-opens it.
			let bond_before = bonded(WORKER);
			run_to_block(3 * LEASE);
			assert_eq!(Jobs::<Test>::get(job).unwrap().state, JobState::Cancelled);
			assert_eq!(bonded(WORKER), bond_before);
			Models::do_try_state().expect("the escrow and bonds add up");
		});
	}

	#[test]
	fn jobs_are_listed_by_state_and_model() {
		build_and_execute(|| {
			let (model, first) = job_with_two_contributions(MIN_FEE);
			let second = create_job(model, MIN_FEE);
			bond(WORKER);
			assert_ok!(Models::claim(signed(WORKER), second));
			let ids =
				|jobs: Vec<(JobId, _)>| jobs.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
			assert_eq!(ids(Models::jobs(None, None, 0, 10)), vec![first, second]);
			assert_eq!(ids(Models::jobs(Some(JobStatus::Open), None, 0, 10)), vec![first]);
			assert_eq!(
				ids(Models::jobs(Some(JobStatus::Claimed), Some(model), 0, 10)),
				vec![second]
			);
			assert_eq!(ids(Models::jobs(None, Some(model + 1), 0, 10)), Vec::<JobId>::new());
			assert_eq!(ids(Models::jobs(None, None, 1, 10)), vec![second]);
			assert_eq!(ids(Models::jobs(None, None, 0, 1)), vec![first]);
		});
	}
}

mod workers {
	use super::*;

	#[test]
	fn bonds_are_held_above_the_minimum() {
		build_and_execute(|| {
			assert_noop!(Models::bond(signed(WORKER), 0), Error::<Test>::ZeroAmount);
			assert_noop!(Models::bond(signed(WORKER), MIN_BOND - 1), Error::<Test>::BondTooSmall);
			assert_noop!(Models::bond(signed(POOR), MIN_BOND), Error::<Test>::InsufficientBalance);
			assert_ok!(Models::bond(signed(WORKER), MIN_BOND));
			assert_ok!(Models::bond(signed(WORKER), 5));
			assert_eq!(bonded(WORKER), MIN_BOND + 5);
			assert_noop!(Models::unbond(signed(ALICE), 1), Error::<Test>::NotAWorker);
			assert_noop!(
				Models::unbond(signed(WORKER), MIN_BOND + 6),
				Error::<Test>::NotThatMuchBonded
			);
			assert_noop!(Models::unbond(signed(WORKER), 6), Error::<Test>::BondTooSmall);
			assert_ok!(Models::unbond(signed(WORKER), 5));
			assert_ok!(Models::unbond(signed(WORKER), MIN_BOND));
			assert_eq!((bonded(WORKER), Workers::<Test>::get(WORKER)), (0, None));
		});
	}

	#[test]
	fn a_worker_holding_a_lease_keeps_its_bond() {
		build_and_execute(|| {
			let (_, job) = job_with_two_contributions(MIN_FEE);
			bond(WORKER);
			assert_ok!(Models::claim(signed(WORKER), job));
			assert_noop!(Models::unbond(signed(WORKER), MIN_BOND), Error::<Test>::StillClaiming);
		});
	}

	#[test]
	fn one_lease_per_job_and_only_for_bonded_workers() {
		build_and_execute(|| {
			let (_, job) = job_with_two_contributions(MIN_FEE);
			assert_noop!(Models::claim(signed(WORKER), job), Error::<Test>::NotAWorker);
			bond(WORKER);
			bond(WORKER2);
			assert_noop!(Models::claim(signed(WORKER), 9), Error::<Test>::UnknownJob);
			assert_ok!(Models::claim(signed(WORKER), job));
			let until = 1 + LEASE;
			System::assert_last_event(Event::JobClaimed { job, worker: WORKER, until }.into());
			assert_eq!(
				Jobs::<Test>::get(job).unwrap().state,
				JobState::Claimed { worker: WORKER, until }
			);
			assert_noop!(Models::claim(signed(WORKER2), job), Error::<Test>::JobNotOpen);
			assert_noop!(Models::claim(signed(WORKER), job), Error::<Test>::JobNotOpen);
			assert_noop!(Models::extend(signed(WORKER2), job), Error::<Test>::NotLeaseHolder);
			advance(5);
			assert_ok!(Models::extend(signed(WORKER), job));
			System::assert_last_event(Event::LeaseExtended { job, until: 6 + LEASE }.into());
		});
	}

	#[test]
	fn leases_ending_in_one_block_are_bounded() {
		build_and_execute(|| {
			let (model, first) = job_with_two_contributions(MIN_FEE);
			let jobs = [first, create_job(model, MIN_FEE), create_job(model, MIN_FEE)];
			bond(WORKER);
			assert_ok!(Models::claim(signed(WORKER), jobs[0]));
			assert_ok!(Models::claim(signed(WORKER), jobs[1]));
			assert_noop!(Models::claim(signed(WORKER), jobs[2]), Error::<Test>::LeaseQueueFull);
			advance(1);
			assert_ok!(Models::claim(signed(WORKER), jobs[2]));
		});
	}

	#[test]
	fn a_lapsed_lease_reopens_the_job_slashes_the_worker_and_refuses_its_late_calls() {
		build_and_execute(|| {
			let (_, job) = job_with_two_contributions(10_000);
			bond(WORKER);
			bond(WORKER2);
			assert_ok!(Models::claim(signed(WORKER), job));
			publish(WORKER, job);
			let issuance = Balances::total_issuance();
			// The lease covers blocks up to 1 + LEASE; the next block re-opens the job.
			run_to_block(1 + LEASE);
			assert!(matches!(Jobs::<Test>::get(job).unwrap().state, JobState::Claimed { .. }));
			run_to_block(2 + LEASE);
			assert_eq!(Jobs::<Test>::get(job).unwrap().state, JobState::Open);
			let slashed = MIN_BOND / 10;
			System::assert_has_event(Event::LeaseExpired { job, worker: WORKER, slashed }.into());
			assert_eq!(bonded(WORKER), MIN_BOND - slashed);
			assert_eq!(Balances::total_issuance(), issuance - slashed);
			let shares = shares(job, &[1, 1]);
			assert_noop!(
				Models::commit(signed(WORKER), job, outcome(job, &shares), shares.clone()),
				Error::<Test>::LeaseExpired
			);
			assert_noop!(Models::extend(signed(WORKER), job), Error::<Test>::LeaseExpired);
			// A second worker completes it, and only it is paid.
			assert_ok!(Models::claim(signed(WORKER2), job));
			assert_noop!(
				Models::commit(signed(WORKER2), job, outcome(job, &shares), shares.clone()),
				Error::<Test>::NoAdapterPublished
			);
			publish(WORKER2, job);
			assert_ok!(Models::commit(signed(WORKER2), job, outcome(job, &shares), shares));
			assert_eq!(pallet_rewards::Claimable::<Test>::get(WORKER2).training, 6_000);
			assert_eq!(pallet_rewards::Claimable::<Test>::get(WORKER).training, 0);
		});
	}

	#[test]
	fn an_extended_lease_does_not_lapse_at_its_first_end() {
		build_and_execute(|| {
			let (_, job) = job_with_two_contributions(MIN_FEE);
			bond(WORKER);
			assert_ok!(Models::claim(signed(WORKER), job));
			run_to_block(LEASE);
			assert_ok!(Models::extend(signed(WORKER), job));
			// Past the first lease's check, and up to the extension's last block.
			run_to_block(2 * LEASE);
			assert_eq!(
				Jobs::<Test>::get(job).unwrap().state,
				JobState::Claimed { worker: WORKER, until: 2 * LEASE }
			);
			assert_eq!(bonded(WORKER), MIN_BOND);
			run_to_block(2 * LEASE + 1);
			assert_eq!(Jobs::<Test>::get(job).unwrap().state, JobState::Open);
		});
	}
}

mod commits {
	use super::*;

	fn claimed_job(fee: Balance) -> JobId {
		let (_, job) = job_with_two_contributions(fee);
		bond(WORKER);
		assert_ok!(Models::claim(signed(WORKER), job));
		job
	}

	#[test]
	fn publishing_indexes_the_adapter_and_records_its_hashes() {
		build_and_execute(|| {
			let job = claimed_job(MIN_FEE);
			assert_noop!(
				Models::publish_adapter(signed(WORKER2), job, vec![], ADAPTER.to_vec()),
				Error::<Test>::NotLeaseHolder
			);
			assert_noop!(
				Models::publish_adapter(signed(WORKER), job, vec![], vec![]),
				Error::<Test>::EmptyAdapter
			);
			assert_noop!(
				Models::publish_adapter(signed(WORKER), job, vec![], vec![0; 4097]),
				Error::<Test>::AdapterTooLarge
			);
			assert_noop!(
				Models::publish_adapter(signed(WORKER), job, vec![b' '; 4097], ADAPTER.to_vec()),
				Error::<Test>::AdapterConfigTooLarge
			);
			publish(WORKER, job);
			let published = Adapters::<Test>::get(job).unwrap();
			let content = sp_io::hashing::blake2_256(ADAPTER);
			assert_eq!(published.sha256, sp_io::hashing::sha2_256(ADAPTER));
			assert_eq!((published.size, published.content), (ADAPTER.len() as u32, content));
			assert_eq!(published.config.to_vec(), ADAPTER_CONFIG.to_vec());
			System::assert_last_event(
				Event::AdapterPublished {
					job,
					sha256: published.sha256,
					size: published.size,
					content,
				}
				.into(),
			);
		});
	}

	#[test]
	fn a_commit_pays_the_fee_exactly_by_the_split_and_the_shares() {
		build_and_execute(|| {
			let job = claimed_job(10_000);
			publish(WORKER, job);
			let shares = shares(job, &[100, 200]);
			let pot = Rewards::account_id();
			let pot_before = Balances::balance(&pot);
			let builder_before = Balances::balance(&BUILDER);
			assert_ok!(Models::commit(signed(WORKER), job, outcome(job, &shares), shares.clone()));
			// 60% trainer, 10% pools, 30% contributors by 100:200.
			assert_eq!(pallet_rewards::Claimable::<Test>::get(WORKER).training, 6_000);
			assert_eq!(pallet_rewards::Claimable::<Test>::get(ALICE).training, 1_000);
			assert_eq!(pallet_rewards::Claimable::<Test>::get(BOB).training, 2_000);
			assert_eq!(pallet_rewards::Pools::<Test>::get(TEXT), 1_000);
			assert_eq!(Balances::balance(&pot), pot_before + 10_000);
			assert_eq!((escrow(BUILDER), Balances::balance(&BUILDER)), (0, builder_before));
			System::assert_last_event(
				Event::JobCommitted {
					job,
					worker: WORKER,
					adapter: sp_io::hashing::sha2_256(ADAPTER),
					trainer_paid: 6_000,
					pools_paid: 1_000,
					contributors_paid: 3_000,
				}
				.into(),
			);
			assert_eq!(JobByAdapter::<Test>::get(sp_io::hashing::sha2_256(ADAPTER)), Some(job));
			assert_eq!(Shares::<Test>::get(job).unwrap().to_vec(), shares);
			assert_eq!(Workers::<Test>::get(WORKER).unwrap().claims, 0);
			// Contributors and the trainer take their credit with rewards' `claim`.
			let alice_before = Balances::balance(&ALICE);
			assert_ok!(Rewards::claim(signed(ALICE)));
			assert_eq!(Balances::balance(&ALICE), alice_before + 1_000);
		});
	}

	#[test]
	fn rounding_remainders_go_to_the_pool_so_the_whole_fee_is_paid() {
		build_and_execute(|| {
			let job = claimed_job(1_001);
			publish(WORKER, job);
			let shares = shares(job, &[1, 2]);
			assert_ok!(Models::commit(signed(WORKER), job, outcome(job, &shares), shares));
			// Trainer 60% of 1,001 = 600; pools 100; contributors 301 split 1:2 = 100 + 200,
			// and the 1 left over joins the pool.
			let claimable = |who| pallet_rewards::Claimable::<Test>::get(who).training;
			assert_eq!((claimable(WORKER), claimable(ALICE), claimable(BOB)), (600, 100, 200));
			assert_eq!(pallet_rewards::Pools::<Test>::get(TEXT), 101);
		});
	}

	#[test]
	fn bad_commits_are_refused_by_name_and_change_nothing() {
		build_and_execute(|| {
			let job = claimed_job(MIN_FEE);
			let good = shares(job, &[1, 1]);
			let commit = |who, outcome, shares| Models::commit(signed(who), job, outcome, shares);
			assert_noop!(
				commit(WORKER, outcome(job, &good), good.clone()),
				Error::<Test>::NoAdapterPublished
			);
			publish(WORKER, job);
			assert_noop!(
				commit(WORKER2, outcome(job, &good), good.clone()),
				Error::<Test>::NotLeaseHolder
			);
			let other_adapter = Outcome { adapter: [9; 32], ..outcome(job, &good) };
			assert_noop!(
				commit(WORKER, other_adapter, good.clone()),
				Error::<Test>::AdapterMismatch
			);
			let wrong_root = Outcome { training_root: [7; 32], ..outcome(job, &good) };
			assert_noop!(
				commit(WORKER, wrong_root, good.clone()),
				Error::<Test>::WrongTrainingRoot
			);
			let missing = good[..1].to_vec();
			assert_noop!(
				commit(WORKER, outcome(job, &missing), missing),
				Error::<Test>::SharesMismatch
			);
			let reversed: Vec<_> = good.iter().rev().copied().collect();
			assert_noop!(
				commit(WORKER, outcome(job, &reversed), reversed),
				Error::<Test>::SharesMismatch
			);
			let mut stranger = good.clone();
			stranger[1].contribution = 99;
			assert_noop!(
				commit(WORKER, outcome(job, &stranger), stranger),
				Error::<Test>::SharesMismatch
			);
			let zero = shares(job, &[0, 0]);
			assert_noop!(
				commit(WORKER, outcome(job, &zero), zero),
				Error::<Test>::SharesAddUpToZero
			);
			let other = shares(job, &[1, 2]);
			assert_noop!(
				commit(WORKER, outcome(job, &other), good.clone()),
				Error::<Test>::SharesRootMismatch
			);
			assert_noop!(
				Models::commit(signed(WORKER), 9, outcome(job, &good), good.clone()),
				Error::<Test>::UnknownJob
			);
		});
	}

	#[test]
	fn attributed_shares_split_the_contributors_part_and_must_add_up_to_one() {
		build_and_execute(|| {
			let job = claimed_job(10_000);
			publish(WORKER, job);
			let influence = crate::Attribution::Influence {
				projection_dim: 8192,
				projection_seed: 0,
				checkpoints: 3,
				probes: 2,
			};
			let attributed =
				|shares: &[Share]| Outcome { attribution: influence, ..outcome(job, shares) };
			let commit = |outcome, shares| Models::commit(signed(WORKER), job, outcome, shares);
			// A billionth short of one, and a billionth over.
			for weights in [[250_000_000, 749_999_999], [250_000_000, 750_000_001]] {
				let shares = shares(job, &weights);
				assert_noop!(commit(attributed(&shares), shares), Error::<Test>::SharesNotWhole);
			}
			let whole = shares(job, &[250_000_000, 750_000_000]);
			for unstated in [
				crate::Attribution::Influence {
					projection_dim: 0,
					projection_seed: 0,
					checkpoints: 3,
					probes: 2,
				},
				crate::Attribution::Influence {
					projection_dim: 8,
					projection_seed: 0,
					checkpoints: 0,
					probes: 2,
				},
				crate::Attribution::Influence {
					projection_dim: 8,
					projection_seed: 0,
					checkpoints: 3,
					probes: 0,
				},
			] {
				let outcome = Outcome { attribution: unstated, ..outcome(job, &whole) };
				assert_noop!(commit(outcome, whole.clone()), Error::<Test>::AttributionUnstated);
			}
			// A contribution that taught nothing gets nothing; the whole part goes to the other.
			let one_sided = shares(job, &[0, SHARES_WHOLE]);
			assert_ok!(commit(attributed(&one_sided), one_sided.clone()));
			assert_eq!(Results::<Test>::get(job).unwrap().attribution, influence);
			// Trainer 60%, pools 10%, contributors 30% = 3,000, all to Bob's contribution.
			let claimable = |who| pallet_rewards::Claimable::<Test>::get(who).training;
			assert_eq!((claimable(WORKER), claimable(ALICE), claimable(BOB)), (6_000, 0, 3_000));
		});
	}

	#[test]
	fn paying_for_a_committed_job_splits_as_its_fee_did_and_other_jobs_are_refused() {
		build_and_execute(|| {
			let job = claimed_job(MIN_FEE);
			assert_eq!(<Models as JobRevenue<_, _>>::committed_shares(job), None);
			assert_noop!(
				<Models as JobRevenue<_, _>>::pay_for_job(&OWNER, job, 1_000),
				Error::<Test>::NotCommitted
			);
			assert_noop!(
				<Models as JobRevenue<_, _>>::pay_for_job(&OWNER, job + 1, 1_000),
				Error::<Test>::UnknownJob
			);
			publish(WORKER, job);
			let shares = shares(job, &[100, 200]);
			assert_ok!(Models::commit(signed(WORKER), job, outcome(job, &shares), shares));
			assert_eq!(<Models as JobRevenue<_, _>>::committed_shares(job), Some(2));
			let claimable = |who| pallet_rewards::Claimable::<Test>::get(who).inference;
			let before = (claimable(WORKER), claimable(ALICE), claimable(BOB));
			let pool_before = pallet_rewards::Pools::<Test>::get(TEXT);
			let payer_before = Balances::balance(&OWNER);
			let paid = <Models as JobRevenue<_, _>>::pay_for_job(&OWNER, job, 1_000).unwrap();
			// 60% trainer, 10% pools, 30% contributors by 100:200, from the payer's own balance,
			// credited as earned by inference; the job's own fee stays under training.
			assert_eq!(paid, Paid { trainer: 600, pools: 100, contributors: 300 });
			assert_eq!(pallet_rewards::Claimable::<Test>::get(WORKER).training, 600);
			assert_eq!(
				(claimable(WORKER), claimable(ALICE), claimable(BOB)),
				(before.0 + 600, before.1 + 100, before.2 + 200)
			);
			assert_eq!(pallet_rewards::Pools::<Test>::get(TEXT), pool_before + 100);
			assert_eq!(Balances::balance(&OWNER), payer_before - 1_000);
		});
	}

	#[test]
	fn a_committed_job_never_changes_again() {
		build_and_execute(|| {
			let job = claimed_job(MIN_FEE);
			publish(WORKER, job);
			let shares = shares(job, &[1, 1]);
			assert_ok!(Models::commit(signed(WORKER), job, outcome(job, &shares), shares.clone()));
			let record = Jobs::<Test>::get(job).unwrap();
			let result = Results::<Test>::get(job).unwrap();
			assert_noop!(
				Models::commit(signed(WORKER), job, outcome(job, &shares), shares),
				Error::<Test>::AlreadyCommitted
			);
			assert_noop!(
				Models::publish_adapter(signed(WORKER), job, vec![], b"other".to_vec()),
				Error::<Test>::AlreadyCommitted
			);
			assert_noop!(Models::claim(signed(WORKER), job), Error::<Test>::AlreadyCommitted);
			assert_noop!(Models::cancel_job(signed(BUILDER), job), Error::<Test>::JobOver);
			assert_noop!(Models::extend(signed(WORKER), job), Error::<Test>::AlreadyCommitted);
			run_to_block(3 * LEASE);
			assert_eq!(Jobs::<Test>::get(job).unwrap(), record);
			assert_eq!(Results::<Test>::get(job).unwrap(), result);
		});
	}

	#[test]
	fn one_adapter_is_the_result_of_one_job() {
		build_and_execute(|| {
			let first = claimed_job(MIN_FEE);
			let second = create_job(0, MIN_FEE);
			assert_ok!(Models::claim(signed(WORKER), second));
			for job in [first, second] {
				publish(WORKER, job);
			}
			let shares_first = shares(first, &[1, 1]);
			assert_ok!(Models::commit(
				signed(WORKER),
				first,
				outcome(first, &shares_first),
				shares_first
			));
			let shares_second = shares(second, &[1, 1]);
			assert_noop!(
				Models::commit(
					signed(WORKER),
					second,
					outcome(second, &shares_second),
					shares_second
				),
				Error::<Test>::AdapterAlreadyCommitted
			);
		});
	}

	#[test]
	fn only_root_changes_the_split_and_only_to_a_whole() {
		build_and_execute(|| {
			let split = FeeSplit {
				trainer: sp_runtime::Perbill::from_percent(50),
				pools: sp_runtime::Perbill::from_percent(20),
				contributors: sp_runtime::Perbill::from_percent(30),
			};
			assert_noop!(Models::set_fee_split(signed(OWNER), split), DispatchError::BadOrigin);
			let broken = FeeSplit { pools: sp_runtime::Perbill::from_percent(21), ..split };
			assert_noop!(
				Models::set_fee_split(RuntimeOrigin::root(), broken),
				Error::<Test>::BadFeeSplit
			);
			assert_ok!(Models::set_fee_split(RuntimeOrigin::root(), split));
			assert_eq!(CurrentFeeSplit::<Test>::get(), split);
		});
	}

	#[test]
	fn only_root_changes_the_lease_period_and_new_leases_follow_it() {
		build_and_execute(|| {
			let (_, job) = job_with_two_contributions(MIN_FEE);
			assert_noop!(Models::set_lease_period(signed(OWNER), 5), DispatchError::BadOrigin);
			assert_noop!(
				Models::set_lease_period(RuntimeOrigin::root(), 0),
				Error::<Test>::ZeroLeasePeriod
			);
			assert_ok!(Models::set_lease_period(RuntimeOrigin::root(), 5));
			System::assert_last_event(Event::LeasePeriodChanged { blocks: 5 }.into());
			bond(WORKER);
			assert_ok!(Models::claim(signed(WORKER), job));
			assert_eq!(
				Jobs::<Test>::get(job).unwrap().state,
				JobState::Claimed { worker: WORKER, until: 1 + 5 }
			);
			run_to_block(7);
			assert_eq!(Jobs::<Test>::get(job).unwrap().state, JobState::Open);
		});
	}
}

mod training_set {
	use super::*;

	#[test]
	fn only_accepted_contributions_join_the_log_in_acceptance_order() {
		build_and_execute(|| {
			let first = contribute(ALICE, "pending then accepted");
			let rejected = contribute(BOB, "rejected");
			let second = accepted(BOB, "accepted at once");
			judge(rejected, ContributionStatus::Rejected);
			judge(first, ContributionStatus::Accepted);
			assert_eq!(LogLength::<Test>::get(TEXT), 2);
			assert_eq!(Log::<Test>::get(TEXT, 0).unwrap().contribution, second);
			assert_eq!(Log::<Test>::get(TEXT, 1).unwrap().contribution, first);
			assert_eq!(LogPosition::<Test>::get(rejected), None);
			System::assert_has_event(
				Event::ContributionLogged { datanet: TEXT, contribution: first, index: 1 }.into(),
			);
		});
	}

	#[test]
	fn members_have_proofs_and_later_or_rejected_contributions_do_not() {
		build_and_execute(|| {
			let model = register_llama();
			let members: Vec<_> = (0..5).map(|i| accepted(ALICE, &format!("member {i}"))).collect();
			let rejected = contribute(BOB, "rejected");
			judge(rejected, ContributionStatus::Rejected);
			let job = create_job(model, MIN_FEE);
			let later = accepted(BOB, "accepted after the job");
			let training = Jobs::<Test>::get(job).unwrap().training;
			for id in &members {
				let proof = Models::inclusion_proof(job, *id).expect("a member has a proof");
				assert_eq!(proof.member.entry.contribution, *id);
				assert!(proof.verify(&training));
				// The proof of one member does not prove another.
				let mut forged = proof.clone();
				forged.member.entry.contribution = later;
				assert!(!forged.verify(&training));
			}
			assert_eq!(Models::inclusion_proof(job, later), None);
			assert_eq!(Models::inclusion_proof(job, rejected), None);
			// The later contribution is in the log, past the job's count.
			assert_eq!(LogPosition::<Test>::get(later), Some((TEXT, 5)));
			assert_eq!(training.parts[0].count, 5);
		});
	}

	#[test]
	fn the_set_is_listed_in_pages_in_set_order() {
		build_and_execute(|| {
			let model = register_llama();
			let ids: Vec<_> = (0..7).map(|i| accepted(ALICE, &format!("page {i}"))).collect();
			let job = create_job(model, MIN_FEE);
			let page = |start, limit| -> Vec<_> {
				Models::training_set(job, start, limit)
					.iter()
					.map(|m| m.entry.contribution)
					.collect()
			};
			assert_eq!(page(0, 3), ids[..3].to_vec());
			assert_eq!(page(3, 3), ids[3..6].to_vec());
			assert_eq!(page(6, 3), ids[6..].to_vec());
			assert_eq!(page(7, 3), Vec::<u64>::new());
			assert_eq!(Models::training_set(99, 0, 3), vec![]);
		});
	}
}
