//! Unit tests: every rule and every error of the validation pallet.

use crate::{
	commitment, mock::*, Ballot, Commits, Error, Event, Polls, Reason, Salt, Validators, Verdicts,
};
use frame_support::{
	assert_noop, assert_ok,
	traits::fungible::{Inspect, InspectHold},
};
use pallet_datanets::{ContributionId, ContributionStatus};
use polkadot_sdk::{frame_support, sp_runtime::Perbill};

const STAKE: Balance = 10_000;

fn hold_of(who: AccountId) -> Balance {
	Balances::balance_on_hold(&crate::HoldReason::ValidatorStake.into(), &who)
}

fn bond(who: AccountId, amount: Balance) {
	assert_ok!(Validation::bond(RuntimeOrigin::signed(who), vec![DATANET], amount));
}

fn salt_of(who: AccountId) -> Salt {
	[who as u8; 32]
}

fn commit(who: AccountId, contribution: ContributionId, ballot: Ballot) {
	assert_ok!(Validation::commit(
		RuntimeOrigin::signed(who),
		contribution,
		commitment(&ballot, &salt_of(who), &who)
	));
}

fn reveal(who: AccountId, contribution: ContributionId, ballot: Ballot) {
	assert_ok!(Validation::reveal(RuntimeOrigin::signed(who), contribution, ballot, salt_of(who)));
}

/// Block numbers of a contribution submitted at block 1.
const IN_REVEAL: u64 = 1 + COMMIT_PERIOD + 1;
const AFTER_REVEAL: u64 = 1 + COMMIT_PERIOD + REVEAL_PERIOD + 1;

fn status_of(contribution: ContributionId) -> ContributionStatus {
	pallet_datanets::Contributions::<Test>::get(contribution).unwrap().status
}

mod stake {
	use super::*;

	#[test]
	fn bond_holds_stake_and_records_datanets() {
		ExtBuilder::build_and_execute(|| {
			bond(V1, STAKE);
			assert_eq!(hold_of(V1), STAKE);
			let validator = Validators::<Test>::get(V1).unwrap();
			assert_eq!((validator.bonded, validator.datanets.to_vec()), (STAKE, vec![DATANET]));
			System::assert_last_event(
				Event::Bonded { who: V1, amount: STAKE, bonded: STAKE, datanets: vec![DATANET] }
					.into(),
			);
			// Topping up adds; zero only changes the datanets.
			bond(V1, 5);
			assert_eq!(hold_of(V1), STAKE + 5);
			assert_ok!(Validation::bond(RuntimeOrigin::signed(V1), vec![DATANET, 1], 0));
			assert_eq!(Validators::<Test>::get(V1).unwrap().datanets.to_vec(), vec![DATANET, 1]);
		});
	}

	#[test]
	fn bond_refuses_too_little_stake_and_bad_lists() {
		ExtBuilder::build_and_execute(|| {
			let bond = |datanets: Vec<u32>, amount| {
				Validation::bond(RuntimeOrigin::signed(V1), datanets, amount)
			};
			assert_noop!(bond(vec![0], MIN_STAKE - 1), Error::<Test>::BelowMinimumStake);
			// The minimum is per datanet served.
			assert_noop!(bond(vec![0, 1], 2 * MIN_STAKE - 1), Error::<Test>::BelowMinimumStake);
			assert_noop!(bond(vec![], MIN_STAKE), Error::<Test>::NoDatanets);
			assert_noop!(bond(vec![0, 0], 2 * MIN_STAKE), Error::<Test>::BadDatanetList);
			assert_noop!(bond(vec![0, 1, 2, 3], 4 * MIN_STAKE), Error::<Test>::BadDatanetList);
			assert_noop!(
				Validation::bond(RuntimeOrigin::signed(V1), vec![0], INITIAL_BALANCE + 1),
				polkadot_sdk::sp_runtime::TokenError::FundsUnavailable
			);
		});
	}

	#[test]
	fn unbond_waits_out_the_delay_before_withdraw() {
		ExtBuilder::build_and_execute(|| {
			bond(V1, STAKE);
			assert_noop!(
				Validation::unbond(RuntimeOrigin::signed(V1), STAKE + 1),
				Error::<Test>::InsufficientBond
			);
			assert_noop!(
				Validation::withdraw(RuntimeOrigin::signed(V1)),
				Error::<Test>::NothingToWithdraw
			);
			assert_ok!(Validation::unbond(RuntimeOrigin::signed(V1), 4_000));
			System::assert_last_event(
				Event::Unbonded { who: V1, amount: 4_000, unlocks_at: 1 + UNBONDING_DELAY }.into(),
			);
			// Still held while unbonding.
			assert_eq!(hold_of(V1), STAKE);
			run_to_block(UNBONDING_DELAY);
			assert_noop!(
				Validation::withdraw(RuntimeOrigin::signed(V1)),
				Error::<Test>::StillUnbonding
			);
			run_to_block(1 + UNBONDING_DELAY);
			let free_before = Balances::balance(&V1);
			assert_ok!(Validation::withdraw(RuntimeOrigin::signed(V1)));
			assert_eq!(Balances::balance(&V1), free_before + 4_000);
			assert_eq!(hold_of(V1), STAKE - 4_000);
			// Withdrawing everything forgets the validator.
			assert_ok!(Validation::unbond(RuntimeOrigin::signed(V1), STAKE - 4_000));
			run_to_block(2 + 2 * UNBONDING_DELAY);
			assert_ok!(Validation::withdraw(RuntimeOrigin::signed(V1)));
			assert!(Validators::<Test>::get(V1).is_none());
			assert_eq!(hold_of(V1), 0);
		});
	}

	#[test]
	fn only_root_changes_the_rules_and_only_to_sane_ones() {
		ExtBuilder::build_and_execute(|| {
			let mut params = test_params();
			params.quorum = 3;
			assert_noop!(
				Validation::set_params(RuntimeOrigin::signed(OWNER), params.clone()),
				polkadot_sdk::sp_runtime::DispatchError::BadOrigin
			);
			assert_ok!(Validation::set_params(RuntimeOrigin::root(), params.clone()));
			assert_eq!(Validation::params(), params);
			for broken in [
				{
					let mut p = params.clone();
					p.quorum = 0;
					p
				},
				{
					let mut p = params.clone();
					p.quorum = MAX_VOTERS + 1;
					p
				},
				{
					let mut p = params.clone();
					p.commit_period = 0;
					p
				},
				{
					let mut p = params.clone();
					p.reveal_period = 0;
					p
				},
				{
					let mut p = params.clone();
					p.supermajority = Perbill::from_percent(50);
					p
				},
			] {
				assert_noop!(
					Validation::set_params(RuntimeOrigin::root(), broken),
					Error::<Test>::BadParams
				);
			}
		});
	}
}

mod commit_reveal {
	use super::*;

	#[test]
	fn commit_refuses_each_ineligible_voter() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a file");
			let sealed = commitment(&Ballot::Accept, &salt_of(V1), &V1);
			let commit = |who| Validation::commit(RuntimeOrigin::signed(who), id, sealed);
			assert_noop!(commit(V1), Error::<Test>::NotValidator);
			// Serving another datanet only.
			assert_ok!(Validation::bond(RuntimeOrigin::signed(V1), vec![7], STAKE));
			assert_noop!(commit(V1), Error::<Test>::NotServingDatanet);
			// Serving it, but under-staked after unbonding.
			assert_ok!(Validation::bond(RuntimeOrigin::signed(V1), vec![DATANET], 0));
			assert_ok!(Validation::unbond(RuntimeOrigin::signed(V1), STAKE - MIN_STAKE + 1));
			assert_noop!(commit(V1), Error::<Test>::UnderStaked);
			// Its own contribution.
			bond(CONTRIBUTOR, STAKE);
			assert_noop!(commit(CONTRIBUTOR), Error::<Test>::OwnContribution);
			assert_noop!(
				Validation::commit(RuntimeOrigin::signed(V2), 99, sealed),
				Error::<Test>::UnknownContribution
			);
		});
	}

	#[test]
	fn a_validator_commits_once_within_the_window() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a file");
			bond(V1, STAKE);
			bond(V2, STAKE);
			commit(V1, id, Ballot::Accept);
			System::assert_last_event(Event::Committed { who: V1, contribution: id }.into());
			assert_noop!(
				Validation::commit(RuntimeOrigin::signed(V1), id, [0; 32]),
				Error::<Test>::AlreadyCommitted
			);
			run_to_block(IN_REVEAL);
			assert_noop!(
				Validation::commit(RuntimeOrigin::signed(V2), id, [0; 32]),
				Error::<Test>::CommitWindowClosed
			);
		});
	}

	#[test]
	fn voters_are_bounded() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a file");
			for who in [V1, V2, V3, V4, V5, V6] {
				bond(who, STAKE);
			}
			for who in [V1, V2, V3, V4, V5] {
				commit(who, id, Ballot::Accept);
			}
			assert_noop!(
				Validation::commit(RuntimeOrigin::signed(V6), id, [0; 32]),
				Error::<Test>::TooManyVoters
			);
		});
	}

	#[test]
	fn reveal_must_match_its_commitment_in_its_window() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a file");
			bond(V1, STAKE);
			bond(V2, STAKE);
			commit(V1, id, Ballot::Reject(Reason::Corrupt));
			let reveal_with = |who, ballot, salt| {
				Validation::reveal(RuntimeOrigin::signed(who), id, ballot, salt)
			};
			let ballot = Ballot::Reject(Reason::Corrupt);
			assert_noop!(reveal_with(V1, ballot, salt_of(V1)), Error::<Test>::RevealWindowNotOpen);
			run_to_block(IN_REVEAL);
			assert_noop!(reveal_with(V2, ballot, salt_of(V2)), Error::<Test>::NotCommitted);
			assert_noop!(
				reveal_with(V1, Ballot::Accept, salt_of(V1)),
				Error::<Test>::CommitmentMismatch
			);
			assert_noop!(
				reveal_with(V1, Ballot::Reject(Reason::OffTopic), salt_of(V1)),
				Error::<Test>::CommitmentMismatch
			);
			assert_noop!(reveal_with(V1, ballot, [9; 32]), Error::<Test>::CommitmentMismatch);
			reveal(V1, id, ballot);
			System::assert_last_event(Event::Revealed { who: V1, contribution: id, ballot }.into());
			assert_noop!(reveal_with(V1, ballot, salt_of(V1)), Error::<Test>::AlreadyRevealed);
			let poll = Polls::<Test>::get(id).unwrap();
			assert_eq!(poll.reject_stake[Reason::Corrupt.index()], STAKE);
		});
	}

	#[test]
	fn a_reveal_is_refused_after_its_window() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a file");
			bond(V1, STAKE);
			commit(V1, id, Ballot::Accept);
			run_to_block(AFTER_REVEAL);
			assert_noop!(
				Validation::reveal(RuntimeOrigin::signed(V1), id, Ballot::Accept, salt_of(V1)),
				Error::<Test>::RevealWindowClosed
			);
		});
	}

	#[test]
	fn a_copied_commitment_or_reveal_cannot_be_used_by_the_copier() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a file");
			bond(V1, STAKE);
			bond(V2, STAKE);
			// V2 copies V1's sealed ballot from V1's commit transaction...
			let sealed = commitment(&Ballot::Accept, &salt_of(V1), &V1);
			commit(V1, id, Ballot::Accept);
			assert_ok!(Validation::commit(RuntimeOrigin::signed(V2), id, sealed));
			run_to_block(IN_REVEAL);
			// ...and front-runs V1's reveal with V1's own ballot and salt: the voter is inside
			// the hash, so it does not open V2's copy.
			assert_noop!(
				Validation::reveal(RuntimeOrigin::signed(V2), id, Ballot::Accept, salt_of(V1)),
				Error::<Test>::CommitmentMismatch
			);
			// And once reveals are visible, the commit window is closed: nothing to copy into.
			assert_noop!(
				Validation::commit(RuntimeOrigin::signed(V3), id, sealed),
				Error::<Test>::CommitWindowClosed
			);
			reveal(V1, id, Ballot::Accept);
		});
	}
}

mod verdicts {
	use super::*;

	#[test]
	fn a_supermajority_decides_and_slashes_dissent_and_silence() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a corrupt file");
			for who in [V1, V2, V3, V4, V5] {
				bond(who, STAKE);
			}
			let corrupt = Ballot::Reject(Reason::Corrupt);
			for who in [V1, V2, V3] {
				commit(who, id, corrupt);
			}
			commit(V4, id, Ballot::Accept);
			commit(V5, id, corrupt); // never reveals
			run_to_block(IN_REVEAL);
			for who in [V1, V2, V3] {
				reveal(who, id, corrupt);
			}
			reveal(V4, id, Ballot::Accept);
			assert_noop!(
				Validation::close(RuntimeOrigin::signed(OWNER), id),
				Error::<Test>::PollStillOpen
			);
			run_to_block(AFTER_REVEAL);
			let issuance = Balances::total_issuance();
			assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), id));

			assert_eq!(status_of(id), ContributionStatus::Rejected);
			let verdict = Verdicts::<Test>::get(id).unwrap();
			assert_eq!(verdict.reason, Some(Reason::Corrupt));
			assert_eq!((verdict.accept_stake, verdict.reject_stake), (STAKE, 3 * STAKE));
			assert_eq!((verdict.revealed, verdict.committed), (4, 5));
			// 3/4 of revealed stake ≥ 2/3: the dissenter loses 1%, the silent one 5%.
			let (wrong, silent) = (STAKE / 100, STAKE * 5 / 100);
			assert_eq!(hold_of(V4), STAKE - wrong);
			assert_eq!(hold_of(V5), STAKE - silent);
			for who in [V1, V2, V3] {
				assert_eq!(hold_of(who), STAKE);
			}
			assert_eq!(verdict.slashed, wrong + silent);
			// Slashes are burned: issuance falls by exactly that much.
			assert_eq!(Balances::total_issuance(), issuance - wrong - silent);
			System::assert_has_event(
				Event::Slashed { who: V4, contribution: id, amount: wrong, revealed: true }.into(),
			);
			System::assert_last_event(
				Event::VerdictReached {
					contribution: id,
					status: ContributionStatus::Rejected,
					reason: Some(Reason::Corrupt),
				}
				.into(),
			);
			// The vote's working storage is gone; it closes once.
			assert!(Polls::<Test>::get(id).is_none());
			assert_eq!(Commits::<Test>::iter_prefix(id).count(), 0);
			assert_noop!(
				Validation::close(RuntimeOrigin::signed(OWNER), id),
				Error::<Test>::NotPending
			);
		});
	}

	#[test]
	fn a_close_call_slashes_nobody() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a borderline file");
			bond(V1, 3_000);
			bond(V2, 3_000);
			bond(V3, 4_000);
			bond(V4, STAKE);
			commit(V1, id, Ballot::Accept);
			commit(V2, id, Ballot::Accept);
			commit(V3, id, Ballot::Reject(Reason::LowQuality));
			commit(V4, id, Ballot::Accept); // never reveals
			run_to_block(IN_REVEAL);
			reveal(V1, id, Ballot::Accept);
			reveal(V2, id, Ballot::Accept);
			reveal(V3, id, Ballot::Reject(Reason::LowQuality));
			run_to_block(AFTER_REVEAL);
			assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), id));
			// 60% of the revealed stake accepts: a verdict, but below 2/3, so honest
			// disagreement and even silence go unslashed.
			assert_eq!(status_of(id), ContributionStatus::Accepted);
			assert_eq!(Verdicts::<Test>::get(id).unwrap().slashed, 0);
			assert_eq!(hold_of(V3), 4_000);
			assert_eq!(hold_of(V4), STAKE);
		});
	}

	#[test]
	fn exactly_two_thirds_is_a_supermajority() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a file");
			bond(V1, 2_000);
			bond(V2, 1_000);
			commit(V1, id, Ballot::Accept);
			commit(V2, id, Ballot::Reject(Reason::Other));
			run_to_block(IN_REVEAL);
			reveal(V1, id, Ballot::Accept);
			reveal(V2, id, Ballot::Reject(Reason::Other));
			run_to_block(AFTER_REVEAL);
			assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), id));
			assert_eq!(status_of(id), ContributionStatus::Accepted);
			assert_eq!(hold_of(V2), 1_000 - 10);
		});
	}

	#[test]
	fn a_tie_expires_and_the_leading_reason_names_a_rejection() {
		ExtBuilder::build_and_execute(|| {
			let tied = contribute(CONTRIBUTOR, "a tied file");
			let rejected = contribute(CONTRIBUTOR, "a rejected file");
			for who in [V1, V2, V3] {
				bond(who, STAKE);
			}
			bond(V4, 2 * STAKE);
			commit(V1, tied, Ballot::Accept);
			commit(V2, tied, Ballot::Reject(Reason::OffTopic));
			commit(V1, rejected, Ballot::Reject(Reason::Unsafe));
			commit(V2, rejected, Ballot::Reject(Reason::Unsafe));
			commit(V4, rejected, Ballot::Reject(Reason::NearDuplicate));
			run_to_block(IN_REVEAL);
			reveal(V1, tied, Ballot::Accept);
			reveal(V2, tied, Ballot::Reject(Reason::OffTopic));
			reveal(V1, rejected, Ballot::Reject(Reason::Unsafe));
			reveal(V2, rejected, Ballot::Reject(Reason::Unsafe));
			reveal(V4, rejected, Ballot::Reject(Reason::NearDuplicate));
			run_to_block(AFTER_REVEAL);
			assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), tied));
			assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), rejected));
			assert_eq!(status_of(tied), ContributionStatus::Expired);
			assert_eq!(hold_of(V2), STAKE);
			// Unsafe and NearDuplicate each have 2 × STAKE: the earlier code is named.
			assert_eq!(
				Verdicts::<Test>::get(rejected).unwrap().reason,
				Some(Reason::NearDuplicate)
			);
		});
	}

	#[test]
	fn slashing_reaches_unbonding_stake() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "a file");
			for who in [V1, V2, V3] {
				bond(who, STAKE);
			}
			for who in [V1, V2, V3] {
				commit(who, id, Ballot::Accept);
			}
			// V3 unbonds everything right after committing, then never reveals.
			assert_ok!(Validation::unbond(RuntimeOrigin::signed(V3), STAKE));
			run_to_block(IN_REVEAL);
			reveal(V1, id, Ballot::Accept);
			reveal(V2, id, Ballot::Accept);
			run_to_block(AFTER_REVEAL);
			assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), id));
			assert_eq!(hold_of(V3), STAKE - STAKE * 5 / 100);
			assert_eq!(Validators::<Test>::get(V3).unwrap().unbonding, STAKE - STAKE * 5 / 100);
		});
	}

	#[test]
	fn without_quorum_the_contribution_expires_at_no_cost() {
		ExtBuilder::build_and_execute(|| {
			let id = contribute(CONTRIBUTOR, "an unvoted file");
			bond(V1, STAKE);
			bond(V2, STAKE);
			commit(V1, id, Ballot::Accept);
			commit(V2, id, Ballot::Accept);
			run_to_block(IN_REVEAL);
			reveal(V1, id, Ballot::Accept);
			run_to_block(AFTER_REVEAL);
			let contributor_balance = Balances::balance(&CONTRIBUTOR);
			assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), id));
			assert_eq!(status_of(id), ContributionStatus::Expired);
			// One reveal is below quorum: no verdict, so the silent validator keeps its stake.
			assert_eq!(hold_of(V2), STAKE);
			assert_eq!(Balances::balance(&CONTRIBUTOR), contributor_balance);
			// A contribution nobody voted on expires too.
			let unvoted = contribute(CONTRIBUTOR, "another file");
			run_to_block(AFTER_REVEAL + COMMIT_PERIOD + REVEAL_PERIOD + 1);
			assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), unvoted));
			assert_eq!(status_of(unvoted), ContributionStatus::Expired);
		});
	}
}

#[test]
fn reason_names_round_trip() {
	for reason in Reason::ALL {
		assert_eq!(Reason::from_name(reason.name()), Some(reason));
	}
	assert_eq!(Reason::from_name("blurry"), None);
}
