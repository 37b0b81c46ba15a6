//! Unit tests of rankings, decay, pools, the split, paged settlement and claims, driven
//! through the real validation and datanets pallets.

use crate::{mock::*, score, *};
use frame_support::{
	assert_noop, assert_ok,
	traits::fungible::{Inspect, InspectHold},
};
use pallet_datanets::{ContributionId, ContributionStatus};
use pallet_validation::{Ballot, OnVerdict, Reason};
use polkadot_sdk::sp_runtime;
use polkadot_sdk::{
	frame_support,
	sp_arithmetic::{
		traits::{Saturating, Zero},
		FixedU128,
	},
	sp_runtime::Perbill,
};
use sp_runtime::DispatchError;

const ACCEPT: Ballot = Ballot::Accept;
const CORRUPT: Ballot = Ballot::Reject(Reason::Corrupt);

/// Tells rewards of a verdict the way validation does.
fn verdict(who: AccountId, status: ContributionStatus, agreeing: &[(AccountId, Balance)]) {
	<Rewards as OnVerdict<AccountId, Balance>>::on_verdict(0, DATANET, &who, status, agreeing);
}

/// Votes on several contributions at once: every ballot is committed, then revealed, then
/// every vote is closed.
fn judge_all(votes: &[(ContributionId, Vec<(AccountId, Ballot)>)]) {
	let salts: Vec<Vec<_>> = votes
		.iter()
		.map(|(id, ballots)| ballots.iter().map(|(who, b)| commit(*who, *id, *b)).collect())
		.collect();
	advance(COMMIT_PERIOD + 1);
	for ((id, ballots), salts) in votes.iter().zip(salts) {
		for ((who, ballot), salt) in ballots.iter().zip(salts) {
			assert_ok!(Validation::reveal(RuntimeOrigin::signed(*who), *id, *ballot, salt));
		}
	}
	advance(REVEAL_PERIOD);
	for (id, _) in votes {
		assert_ok!(Validation::close(RuntimeOrigin::signed(OWNER), *id));
	}
}

fn all_three(ballot: Ballot) -> Vec<(AccountId, Ballot)> {
	vec![(V1, ballot), (V2, ballot), (V3, ballot)]
}

/// The first `limit` rows of `datanet`'s leaderboard.
fn board(datanet: DatanetId, limit: u32) -> Vec<LeaderboardEntry<AccountId, Balance>> {
	Rewards::leaderboard(datanet, None, limit).expect("the first page always exists")
}

fn row(who: AccountId) -> LeaderboardEntry<AccountId, Balance> {
	board(DATANET, u32::MAX).into_iter().find(|row| row.account == who).expect("on the leaderboard")
}

fn floor_share(amount: Balance, part: u128, whole: u128) -> Balance {
	(amount as u128 * part / whole) as Balance
}

#[test]
fn nine_accepts_and_one_reject_rank_above_two_accepts() {
	build_and_execute(|| {
		for _ in 0..9 {
			verdict(ALICE, ContributionStatus::Accepted, &[]);
		}
		verdict(ALICE, ContributionStatus::Rejected, &[]);
		verdict(BOB, ContributionStatus::Accepted, &[]);
		verdict(BOB, ContributionStatus::Accepted, &[]);

		let rows = board(DATANET, 10);
		assert_eq!(rows.len(), 2);
		assert_eq!((rows[0].rank, rows[0].account), (1, ALICE));
		assert_eq!((rows[1].rank, rows[1].account), (2, BOB));
		assert_eq!((rows[0].accepted, rows[0].rejected), (9, FixedU128::from_u32(1)));
		// Wilson lower bounds: 0.5958 and 0.3424.
		assert_eq!(rows[0].score.deconstruct() / 1_000_000, 595);
		assert_eq!(rows[1].score.deconstruct() / 1_000_000, 342);
		// The limit truncates.
		assert_eq!(board(DATANET, 1).len(), 1);
	});
}

#[test]
fn a_rejection_weighs_half_after_seven_epochs_and_never_zeroes_the_score() {
	build_and_execute(|| {
		verdict(ALICE, ContributionStatus::Accepted, &[]);
		verdict(ALICE, ContributionStatus::Rejected, &[]);
		let fresh = row(ALICE).score;
		assert_eq!(row(ALICE).rejected, FixedU128::from_u32(1));
		assert!(fresh > Perbill::zero(), "a rejection lowers the score but never zeroes it");

		for _ in 0..7 {
			next_epoch();
		}
		assert_eq!(CurrentEpoch::<Test>::get(), 7);
		assert_eq!(row(ALICE).rejected, FixedU128::from_rational(1, 2));
		assert!(row(ALICE).score > fresh, "the rejection fades");

		// The decay is lazy, and the stored record agrees once it is touched again.
		verdict(ALICE, ContributionStatus::Accepted, &[]);
		let standing = Standings::<Test>::get(DATANET, ALICE).unwrap();
		assert_eq!(
			(standing.accepted, standing.rejected, standing.as_of),
			(2, FixedU128::from_rational(1, 2), 7)
		);
		for _ in 0..7 {
			next_epoch();
		}
		assert_eq!(row(ALICE).rejected, FixedU128::from_rational(1, 4));
	});
}

/// Alice has 3 files accepted, Bob 1 accepted and 1 rejected, all by three agreeing
/// validators with equal stakes, in epoch 0.
fn epoch_with_two_contributors() -> (Balance, Balance) {
	for v in [V1, V2, V3] {
		bond(v, 10_000);
	}
	let alice: Vec<_> = (0..3).map(|_| contribute(ALICE)).collect();
	let bob_good = contribute(BOB);
	let bob_bad = contribute(BOB);
	let mut votes: Vec<_> = alice.iter().map(|id| (*id, all_three(ACCEPT))).collect();
	votes.push((bob_good, all_three(ACCEPT)));
	votes.push((bob_bad, all_three(CORRUPT)));
	judge_all(&votes);
	assert_eq!(CurrentEpoch::<Test>::get(), 0, "every verdict falls in epoch 0");
	let alice_score = score::wilson_lower_bound(3, FixedU128::zero()).deconstruct() as u128;
	let bob_score = score::wilson_lower_bound(1, FixedU128::from_u32(1)).deconstruct() as u128;
	let total = 3 * alice_score + bob_score;
	let contributors = ISSUANCE * 7 / 10;
	(floor_share(contributors, 3 * alice_score, total), floor_share(contributors, bob_score, total))
}

#[test]
fn an_epoch_pays_out_as_calculated_by_hand() {
	build_and_execute(|| {
		let issuance_before = Balances::total_issuance();
		let (alice_expected, bob_expected) = epoch_with_two_contributors();
		assert_eq!(
			Claimable::<Test>::get(ALICE).total(),
			0,
			"nothing is paid before the epoch ends"
		);

		next_epoch();
		assert_eq!(CurrentEpoch::<Test>::get(), 1);
		assert_eq!(Unsettled::<Test>::get(), 1, "one block settles a small epoch");
		System::assert_has_event(
			Event::PoolSplit {
				epoch: 0,
				datanet: DATANET,
				minted: ISSUANCE,
				contributors: 70_000,
				validators: 20_000,
				owner: 10_000,
			}
			.into(),
		);
		System::assert_has_event(Event::EpochSettled { epoch: 0 }.into());

		assert_eq!(Claimable::<Test>::get(ALICE).total(), alice_expected);
		assert_eq!(Claimable::<Test>::get(BOB).total(), bob_expected);
		assert_eq!(row(ALICE).earned, alice_expected);
		assert_eq!(row(BOB).earned, bob_expected);
		// Equal stakes voting with five verdicts each share 20% equally.
		for v in [V1, V2, V3] {
			assert_eq!(Claimable::<Test>::get(v).total(), 20_000 / 3);
		}
		assert_eq!(Claimable::<Test>::get(OWNER).total(), 10_000);
		// Each credit is kept under what earned it.
		let by_source = |contributions, validation, ownership| Claims {
			contributions,
			validation,
			ownership,
			..Default::default()
		};
		assert_eq!(Claimable::<Test>::get(ALICE), by_source(alice_expected, 0, 0));
		assert_eq!(Claimable::<Test>::get(V1), by_source(0, 20_000 / 3, 0));
		assert_eq!(Claimable::<Test>::get(OWNER), by_source(0, 0, 10_000));
		// Rounding dust stays in the pool for the next epoch.
		let paid = alice_expected + bob_expected + 3 * (20_000 / 3) + 10_000;
		assert_eq!(Pools::<Test>::get(DATANET), ISSUANCE - paid);
		assert_eq!(Balances::total_issuance(), issuance_before + ISSUANCE);

		// Claiming moves exactly the credit into the wallet, once.
		let before = Balances::balance(&ALICE);
		assert_ok!(Rewards::claim(RuntimeOrigin::signed(ALICE)));
		assert_eq!(Balances::balance(&ALICE), before + alice_expected);
		assert_eq!(Claimable::<Test>::get(ALICE).total(), 0);
		System::assert_last_event(
			Event::Claimed {
				who: ALICE,
				amount: alice_expected,
				by_source: by_source(alice_expected, 0, 0),
			}
			.into(),
		);
		assert_noop!(Rewards::claim(RuntimeOrigin::signed(ALICE)), Error::<Test>::NothingToClaim);
		assert_eq!(Balances::total_issuance(), issuance_before + ISSUANCE);
	});
}

#[test]
fn issuance_changes_by_the_epoch_issuance_plus_slashes() {
	build_and_execute(|| {
		for v in [V1, V2, V3] {
			bond(v, 10_000);
		}
		let before = Balances::total_issuance();
		let good = contribute(ALICE);
		// Two thirds accept: a supermajority, so the dissenter loses 1% of 10,000.
		judge_all(&[(good, vec![(V1, ACCEPT), (V2, ACCEPT), (V3, CORRUPT)])]);
		assert_eq!(Balances::total_balance_on_hold(&V3), 9_900);
		next_epoch();
		assert_eq!(Balances::total_issuance(), before + ISSUANCE - 100);
		// Only the agreeing validators share the validators' part.
		assert_eq!(Claimable::<Test>::get(V1).total(), 10_000);
		assert_eq!(Claimable::<Test>::get(V2).total(), 10_000);
		assert_eq!(Claimable::<Test>::get(V3).total(), 0);
	});
}

#[test]
fn an_epoch_without_verdicts_mints_nothing() {
	build_and_execute(|| {
		let before = Balances::total_issuance();
		next_epoch();
		next_epoch();
		assert_eq!(Unsettled::<Test>::get(), 2);
		assert_eq!(Balances::total_issuance(), before);
		assert_eq!(Pools::<Test>::get(DATANET), 0);
	});
}

#[test]
fn an_epoch_of_rejections_keeps_the_contributors_part_in_the_pool() {
	build_and_execute(|| {
		for v in [V1, V2, V3] {
			bond(v, 10_000);
		}
		let bad = contribute(BOB);
		judge_all(&[(bad, all_three(CORRUPT))]);
		next_epoch();
		assert_eq!(Claimable::<Test>::get(BOB).total(), 0);
		assert_eq!(Claimable::<Test>::get(OWNER).total(), 10_000);
		let validators_paid = 3 * (20_000 / 3);
		assert_eq!(Pools::<Test>::get(DATANET), ISSUANCE - 10_000 - validators_paid);
		assert!(ContributorShares::<Test>::iter().next().is_none());
	});
}

#[test]
fn settlement_is_paged_across_blocks_and_pays_the_same() {
	build_and_execute(|| {
		MaxSteps::set(10);
		bond(V1, 10_000);
		bond(V2, 10_000);
		let contributors: Vec<AccountId> = (100..125).collect();
		let votes: Vec<_> = contributors
			.iter()
			.map(|who| (contribute(*who), vec![(V1, ACCEPT), (V2, ACCEPT)]))
			.collect();
		judge_all(&votes);

		// 1 pool split + 25 contributors + 2 validators + 1 pot closed = 29 steps.
		next_epoch();
		assert_eq!(Unsettled::<Test>::get(), 0, "10 steps do not finish the epoch");
		let credited =
			contributors.iter().filter(|who| Claimable::<Test>::get(**who).total() > 0).count();
		assert_eq!(credited, 9, "the pool split and 9 contributors fit in the first block");
		advance(1);
		assert_eq!(Unsettled::<Test>::get(), 0);
		advance(1);
		assert_eq!(Unsettled::<Test>::get(), 1);

		// Equal records share equally, as an unpaged payout would.
		let each = 70_000 / 25;
		for who in &contributors {
			assert_eq!(Claimable::<Test>::get(who).total(), each);
		}
		assert_eq!(Claimable::<Test>::get(V1).total(), 10_000);
		assert!(Pots::<Test>::iter().next().is_none());
		assert!(ValidatorShares::<Test>::iter().next().is_none());
		MaxSteps::set(1_000);
	});
}

#[test]
fn verdicts_after_the_epoch_end_go_to_the_next_epoch() {
	build_and_execute(|| {
		verdict(ALICE, ContributionStatus::Accepted, &[(V1, 5)]);
		next_epoch();
		let alice_first = Claimable::<Test>::get(ALICE).total();
		assert_eq!(alice_first, 70_000);
		verdict(BOB, ContributionStatus::Accepted, &[(V1, 5)]);
		next_epoch();
		// Bob alone shares epoch 1's fresh mint; Alice gets nothing more.
		assert_eq!(Claimable::<Test>::get(ALICE).total(), alice_first);
		assert_eq!(Claimable::<Test>::get(BOB).total(), 70_000);
	});
}

#[test]
fn owner_deposits_fund_the_next_active_epoch() {
	build_and_execute(|| {
		assert_ok!(Rewards::fund(RuntimeOrigin::signed(OWNER), DATANET, 50_000));
		System::assert_last_event(
			Event::Funded { who: OWNER, datanet: DATANET, amount: 50_000 }.into(),
		);
		assert_eq!(Pools::<Test>::get(DATANET), 50_000);
		next_epoch();
		assert_eq!(Pools::<Test>::get(DATANET), 50_000, "an idle epoch pays nothing out");
		verdict(ALICE, ContributionStatus::Accepted, &[(V1, 5)]);
		next_epoch();
		assert_eq!(Claimable::<Test>::get(ALICE).total(), (ISSUANCE + 50_000) * 7 / 10);
	});
}

#[test]
fn bad_funding_is_refused_and_changes_nothing() {
	build_and_execute(|| {
		assert_noop!(
			Rewards::fund(RuntimeOrigin::signed(OWNER), DATANET, 0),
			Error::<Test>::ZeroAmount
		);
		assert_noop!(
			Rewards::fund(RuntimeOrigin::signed(OWNER), 9, 10),
			Error::<Test>::UnknownDatanet
		);
		assert_noop!(
			Rewards::fund(RuntimeOrigin::signed(77), DATANET, 10),
			sp_runtime::TokenError::FundsUnavailable
		);
	});
}

#[test]
fn payments_through_the_ledger_are_kept_by_source_and_claimed_together() {
	build_and_execute(|| {
		let pot = Rewards::account_id();
		let pot_before = Balances::balance(&pot);
		let payer_before = Balances::balance(&OWNER);
		assert_ok!(<Rewards as RewardsLedger<_, _>>::pay_claimable(
			&OWNER,
			RewardSource::Training,
			&[(ALICE, 300), (BOB, 200)],
		));
		assert_ok!(<Rewards as RewardsLedger<_, _>>::pay_claimable(
			&OWNER,
			RewardSource::Inference,
			&[(ALICE, 40)],
		));
		assert_eq!(Balances::balance(&OWNER), payer_before - 540);
		assert_eq!(Balances::balance(&pot), pot_before + 540);
		let alice = Claims { training: 300, inference: 40, ..Default::default() };
		assert_eq!(Claimable::<Test>::get(ALICE), alice);
		assert_eq!(Claimable::<Test>::get(BOB), Claims { training: 200, ..Default::default() });
		assert_eq!(Rewards::standing(&ALICE).claimable, alice);

		let before = Balances::balance(&ALICE);
		assert_ok!(Rewards::claim(RuntimeOrigin::signed(ALICE)));
		System::assert_last_event(
			Event::Claimed { who: ALICE, amount: 340, by_source: alice }.into(),
		);
		assert_eq!(Balances::balance(&ALICE), before + 340);
		assert_eq!(Claimable::<Test>::get(ALICE), Claims::default());
		assert_eq!(Claimable::<Test>::get(BOB).total(), 200, "another's credit stays");
	});
}

#[test]
fn claim_without_credit_is_refused() {
	build_and_execute(|| {
		assert_noop!(Rewards::claim(RuntimeOrigin::signed(ALICE)), Error::<Test>::NothingToClaim);
	});
}

#[test]
fn params_are_checked_and_only_root_sets_them() {
	build_and_execute(|| {
		let good = test_params();
		assert_noop!(
			Rewards::set_params(RuntimeOrigin::signed(OWNER), good.clone()),
			DispatchError::BadOrigin
		);
		for bad in [
			RewardParams { epoch_length: 0, ..good.clone() },
			RewardParams { rejection_half_life: 0, ..good.clone() },
			RewardParams { owner_share: Perbill::from_percent(11), ..good.clone() },
		] {
			assert_noop!(Rewards::set_params(RuntimeOrigin::root(), bad), Error::<Test>::BadParams);
		}
		let longer = RewardParams { epoch_length: 60, ..good };
		assert_ok!(Rewards::set_params(RuntimeOrigin::root(), longer.clone()));
		assert_eq!(Rewards::params(), longer);
		// The new length applies from the current epoch's start.
		run_to_block(59);
		assert_eq!(CurrentEpoch::<Test>::get(), 0);
		run_to_block(60);
		assert_eq!(CurrentEpoch::<Test>::get(), 1);
	});
}

#[test]
fn standing_lists_claimable_and_every_datanet() {
	build_and_execute(|| {
		verdict(BOB, ContributionStatus::Accepted, &[]);
		verdict(ALICE, ContributionStatus::Accepted, &[]);
		verdict(ALICE, ContributionStatus::Accepted, &[]);
		next_epoch();
		let standing = Rewards::standing(&ALICE);
		assert_eq!(standing.claimable, Claimable::<Test>::get(ALICE));
		assert!(standing.claimable.total() > 0);
		assert_eq!(standing.datanets.len(), 1);
		let (datanet, entry) = &standing.datanets[0];
		assert_eq!((*datanet, entry.rank, entry.accepted), (DATANET, 1, 2));
		assert_eq!(Rewards::standing(&77).datanets.len(), 0);
	});
}

/// A verdict in `datanet` for `who`, the way validation reports it.
fn verdict_in(datanet: DatanetId, who: AccountId, accepted: bool) {
	let status = if accepted { ContributionStatus::Accepted } else { ContributionStatus::Rejected };
	<Rewards as OnVerdict<AccountId, Balance>>::on_verdict(0, datanet, &who, status, &[]);
}

/// Every row of `datanet`'s leaderboard, read in pages of `page` rows.
fn all_pages(datanet: DatanetId, page: u32) -> Vec<LeaderboardEntry<AccountId, Balance>> {
	let mut rows: Vec<LeaderboardEntry<AccountId, Balance>> = Vec::new();
	loop {
		let after = rows.last().map(|row| row.account);
		let next = Rewards::leaderboard(datanet, after, page).expect("the last row is ranked");
		let done = next.len() < page as usize;
		rows.extend(next);
		if done {
			return rows;
		}
	}
}

/// What the leaderboard must say, worked out the slow way: every standing decayed to the
/// current epoch, sorted by score then accepted count then account; equal records share the
/// rank of the first of them.
fn sorted_by_hand(datanet: DatanetId) -> Vec<(u32, AccountId, u32, Perbill)> {
	let epoch = CurrentEpoch::<Test>::get();
	let half_life = Rewards::params().rejection_half_life;
	let mut rows: Vec<_> = Standings::<Test>::iter_prefix(datanet)
		.map(|(who, standing)| {
			let age = epoch - standing.as_of;
			let rejected = standing.rejected.saturating_mul(score::decay_factor(age, half_life));
			(who, standing.accepted, score::wilson_lower_bound(standing.accepted, rejected))
		})
		.collect();
	rows.sort_by(|a, b| {
		b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.to_le_bytes().cmp(&b.0.to_le_bytes()))
	});
	let mut ranked: Vec<(u32, AccountId, u32, Perbill)> = Vec::new();
	for (index, (who, accepted, score)) in rows.into_iter().enumerate() {
		let rank = match ranked.last() {
			Some(last) if (last.2, last.3) == (accepted, score) => last.0,
			_ => index as u32 + 1,
		};
		ranked.push((rank, who, accepted, score));
	}
	ranked
}

fn as_tuples(rows: &[LeaderboardEntry<AccountId, Balance>]) -> Vec<(u32, AccountId, u32, Perbill)> {
	rows.iter().map(|row| (row.rank, row.account, row.accepted, row.score)).collect()
}

#[test]
fn equal_records_share_a_rank_and_pages_continue_after_an_account() {
	build_and_execute(|| {
		// 100, 101 and 102 each have three acceptances, 103 one, 104 one rejection.
		for who in [100, 101, 102] {
			for _ in 0..3 {
				verdict_in(DATANET, who, true);
			}
		}
		verdict_in(DATANET, 103, true);
		verdict_in(DATANET, 104, false);
		let ranks = |rows: Vec<LeaderboardEntry<AccountId, Balance>>| {
			rows.into_iter().map(|row| (row.rank, row.account)).collect::<Vec<_>>()
		};
		assert_eq!(ranks(board(DATANET, 10)), [(1, 100), (1, 101), (1, 102), (4, 103), (5, 104)]);
		// Pages of two, each starting after the last account of the one before.
		let page = |after| ranks(Rewards::leaderboard(DATANET, after, 2).unwrap());
		assert_eq!(page(None), [(1, 100), (1, 101)]);
		assert_eq!(page(Some(101)), [(1, 102), (4, 103)]);
		assert_eq!(page(Some(103)), [(5, 104)]);
		assert_eq!(page(Some(104)), []);
		// A page after someone with no standing there does not exist.
		assert_eq!(Rewards::leaderboard(DATANET, Some(77), 2), None);
		assert_eq!(Rewards::leaderboard(1, Some(100), 2), None);
		// Each account's own rank agrees with the board.
		for (rank, who) in ranks(board(DATANET, 10)) {
			assert_eq!(Rewards::standing(&who).datanets[0].1.rank, rank, "account {who}");
		}
	});
}

#[test]
fn an_account_s_standing_lists_only_its_own_datanets_in_order() {
	build_and_execute(|| {
		for datanet in [5, 2, 9] {
			verdict_in(datanet, BOB, true);
			verdict_in(datanet, ALICE, datanet != 2);
		}
		verdict_in(7, BOB, true);
		let datanets: Vec<_> =
			Rewards::standing(&ALICE).datanets.iter().map(|(d, row)| (*d, row.rank)).collect();
		// Alice ties Bob where both were accepted, and trails him where she was rejected.
		assert_eq!(datanets, [(2, 2), (5, 1), (9, 1)]);
		assert_eq!(Rewards::standing(&BOB).datanets.len(), 4);
	});
}

#[test]
fn a_fading_rejection_moves_its_contributor_up_when_the_epoch_turns() {
	build_and_execute(|| {
		// Alice: 40 accepted, 2 rejected (0.842); Bob: 25 accepted, none rejected (0.867).
		for _ in 0..40 {
			verdict_in(DATANET, ALICE, true);
		}
		verdict_in(DATANET, ALICE, false);
		verdict_in(DATANET, ALICE, false);
		for _ in 0..25 {
			verdict_in(DATANET, BOB, true);
		}
		let order = || board(DATANET, 10).iter().map(|row| row.account).collect::<Vec<_>>();
		assert_eq!(order(), [BOB, ALICE]);
		let epochs = (1..60)
			.find(|_| {
				next_epoch();
				order() == [ALICE, BOB]
			})
			.expect("Alice's rejections fade until she overtakes Bob");
		// Her two rejections weigh 1.1 after six epochs, and she passes him then.
		assert_eq!(epochs, 6);
		assert_eq!(as_tuples(&board(DATANET, 10)), sorted_by_hand(DATANET));
		assert_eq!(
			Standings::<Test>::get(DATANET, ALICE).unwrap().ranked_at,
			CurrentEpoch::<Test>::get()
		);
	});
}

#[test]
fn re_ranking_a_large_epoch_takes_several_blocks_and_loses_no_one() {
	build_and_execute(|| {
		MaxSteps::set(7);
		// 30 fading contributors with different records.
		for (index, who) in (100..130).enumerate() {
			for _ in 0..=index % 9 {
				verdict_in(DATANET, who, true);
			}
			for _ in 0..=index % 4 {
				verdict_in(DATANET, who, false);
			}
		}
		let start = EpochStart::<Test>::get();
		run_to_block(start + EPOCH);
		// One block re-ranks at most seven of them.
		let stale = || {
			Standings::<Test>::iter_values()
				.filter(|s| s.ranked_at < CurrentEpoch::<Test>::get())
				.count()
		};
		assert_eq!(stale(), 30 - 7);
		assert!(RerankCursor::<Test>::get().is_some(), "the walk remembers where it stopped");
		advance(5);
		assert_eq!(stale(), 0);
		assert_eq!(RerankCursor::<Test>::get(), None);
		assert_eq!(as_tuples(&all_pages(DATANET, 4)), sorted_by_hand(DATANET));
	});
}

/// Random verdicts in two datanets, with epochs turning between them and re-ranking paged
/// three standings a block: once settled, every page and every account's rank agree with the
/// slow sort.
mod random_rankings {
	use super::*;
	use proptest::prelude::*;

	#[derive(Debug, Clone)]
	enum Op {
		Verdict(DatanetId, AccountId, bool),
		Advance(u64),
	}

	fn op() -> impl Strategy<Value = Op> {
		prop_oneof![
			4 => (0..2u32, 100..112u64, any::<bool>()).prop_map(|(d, w, a)| Op::Verdict(d, w, a)),
			1 => (1..80u64).prop_map(Op::Advance),
		]
	}

	proptest! {
		#![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

		#[test]
		fn pages_and_ranks_match_a_full_sort(ops in proptest::collection::vec(op(), 1..120)) {
			build_and_execute(|| {
				MaxSteps::set(3);
				for op in ops {
					match op {
						Op::Verdict(datanet, who, accepted) => verdict_in(datanet, who, accepted),
						Op::Advance(blocks) => advance(blocks),
					}
					Rewards::do_try_state().expect("the rank index stays consistent");
				}
				while Unsettled::<Test>::get() < CurrentEpoch::<Test>::get() {
					advance(1);
				}
				for datanet in [0, 1] {
					let pages = as_tuples(&all_pages(datanet, 3));
					assert_eq!(pages, sorted_by_hand(datanet), "datanet {datanet}");
					for (rank, who, _, _) in pages {
						let own = Rewards::standing(&who);
						let row = own.datanets.iter().find(|(d, _)| *d == datanet).unwrap();
						assert_eq!(row.1.rank, rank, "account {who} in datanet {datanet}");
					}
				}
			});
		}
	}
}

/// Random sequences of submit, bond, unbond, commit, reveal, close, fund, claim and time.
mod random_sequences {
	use super::*;
	use frame_support::traits::fungible::Inspect;
	use proptest::prelude::*;
	use std::collections::BTreeMap;

	const CONTRIBUTORS: [AccountId; 3] = [ALICE, BOB, 100];
	const VALIDATORS: [AccountId; 4] = [V1, V2, V3, 14];

	#[derive(Debug, Clone)]
	enum Op {
		Submit(usize),
		Bond(usize, Balance),
		Unbond(usize, Balance),
		Commit(usize, usize, bool),
		RevealAll,
		Close(usize),
		Advance(u64),
		Claim(usize),
		Fund(Balance),
	}

	fn op() -> impl Strategy<Value = Op> {
		prop_oneof![
			(0..CONTRIBUTORS.len()).prop_map(Op::Submit),
			(0..VALIDATORS.len(), 0..5_000u64).prop_map(|(v, a)| Op::Bond(v, a)),
			(0..VALIDATORS.len(), 0..3_000u64).prop_map(|(v, a)| Op::Unbond(v, a)),
			(0..VALIDATORS.len(), 0..8usize, any::<bool>())
				.prop_map(|(v, c, b)| Op::Commit(v, c, b)),
			Just(Op::RevealAll),
			(0..8usize).prop_map(Op::Close),
			(1..45u64).prop_map(Op::Advance),
			(0..CONTRIBUTORS.len() + VALIDATORS.len() + 1).prop_map(Op::Claim),
			(0..50_000u64).prop_map(Op::Fund),
		]
	}

	/// What the events say moved: minted, slashed per validator, claimed per account.
	#[derive(Default)]
	struct Ledger {
		seen: usize,
		minted: Balance,
		slashed: BTreeMap<AccountId, Balance>,
		claimed: BTreeMap<AccountId, Balance>,
	}

	impl Ledger {
		fn collect(&mut self) {
			let events = System::events();
			for record in &events[self.seen.min(events.len())..] {
				match &record.event {
					RuntimeEvent::Rewards(Event::PoolSplit { minted, .. }) => self.minted += minted,
					RuntimeEvent::Rewards(Event::Claimed { who, amount, .. }) => {
						*self.claimed.entry(*who).or_default() += amount
					},
					RuntimeEvent::Validation(pallet_validation::Event::Slashed {
						who,
						amount,
						..
					}) => *self.slashed.entry(*who).or_default() += amount,
					_ => {},
				}
			}
			self.seen = events.len();
		}

		fn next_block(&mut self) {
			self.collect();
			advance(1);
			self.seen = 0;
			self.collect();
		}
	}

	proptest! {
		#![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

		#[test]
		fn stake_and_issuance_are_conserved(ops in proptest::collection::vec(op(), 1..60)) {
			new_test_ext().execute_with(|| {
				let issuance = Balances::total_issuance();
				let mut ledger = Ledger::default();
				let mut contributions: Vec<ContributionId> = Vec::new();
				let mut sealed: Vec<(AccountId, ContributionId, Ballot, [u8; 32])> = Vec::new();
				let pick = |list: &[ContributionId], index: usize| list.get(index % list.len().max(1)).copied();
				for op in ops {
					match op {
						Op::Submit(c) => {
							let who = CONTRIBUTORS[c];
							let id = pallet_datanets::NextContributionId::<Test>::get();
							let text = format!("file {id} from {who}");
							if Datanets::submit(RuntimeOrigin::signed(who), DATANET, text.into_bytes()).is_ok() {
								contributions.push(id);
							}
						},
						Op::Bond(v, amount) => {
							let _ = Validation::bond(RuntimeOrigin::signed(VALIDATORS[v]), vec![DATANET], amount);
						},
						Op::Unbond(v, amount) => {
							let _ = Validation::unbond(RuntimeOrigin::signed(VALIDATORS[v]), amount);
						},
						Op::Commit(v, c, accept) => {
							let Some(id) = pick(&contributions, c) else { continue };
							let who = VALIDATORS[v];
							let ballot = if accept { ACCEPT } else { CORRUPT };
							let salt = [v as u8 + 1; 32];
							let sealed_ballot = pallet_validation::commitment(&ballot, &salt, &who);
							if Validation::commit(RuntimeOrigin::signed(who), id, sealed_ballot).is_ok() {
								sealed.push((who, id, ballot, salt));
							}
						},
						Op::RevealAll => {
							sealed.retain(|(who, id, ballot, salt)| {
								Validation::reveal(RuntimeOrigin::signed(*who), *id, *ballot, *salt).is_err()
							});
						},
						Op::Close(c) => {
							if let Some(id) = pick(&contributions, c) {
								let _ = Validation::close(RuntimeOrigin::signed(OWNER), id);
							}
						},
						Op::Advance(blocks) => (0..blocks).for_each(|_| ledger.next_block()),
						Op::Claim(index) => {
							let who = CONTRIBUTORS.iter().chain(&VALIDATORS).chain(&[OWNER]).nth(index).copied().unwrap();
							let _ = Rewards::claim(RuntimeOrigin::signed(who));
						},
						Op::Fund(amount) => {
							let _ = Rewards::fund(RuntimeOrigin::signed(OWNER), DATANET, amount);
						},
					}
					ledger.collect();
					Rewards::do_try_state().expect("the pot covers every pool and claim");
					let slashed: Balance = ledger.slashed.values().sum();
					prop_assert_eq!(Balances::total_issuance(), issuance + ledger.minted - slashed);
					for who in VALIDATORS {
						let held = Balances::total_balance_on_hold(&who);
						let record = pallet_validation::Validators::<Test>::get(who)
							.map(|v| v.bonded + v.unbonding)
							.unwrap_or_default();
						prop_assert_eq!(held, record, "a validator's hold drifted from its record");
						let expected = INITIAL_BALANCE - ledger.slashed.get(&who).copied().unwrap_or_default()
							+ ledger.claimed.get(&who).copied().unwrap_or_default();
						prop_assert_eq!(Balances::total_balance(&who), expected, "stake lost outside slashing");
					}
				}
				Ok(())
			})?;
		}
	}
}
