//! A leaderboard page and an account's standings read from a chain state of N contributors
//! (default 100,000) in one datanet: the full scan and sort the pallet did before, and the rank
//! index it keeps now, on the same state, with the index's answers checked against the scan's.
//! Also times the settlement steps that re-rank the standings an epoch's turn faded.
//!
//! The state is built by the pallet's own verdict path, then committed into the in-memory trie
//! that test externalities read through, so every query walks the trie as a node's would. The
//! queries run natively here; a node runs them in its wasm runtime.
//!
//! Run with `scripts/bench-rankings.sh [N]`.

// `construct_runtime!` generates public items without docs.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use frame_support::{
	derive_impl,
	traits::{Get, Hooks},
};
use pallet_datanets::{ContributionStatus, DatanetId};
use pallet_rewards::{score, CurrentEpoch, LeaderboardEntry, Standings, Unsettled};
use pallet_validation::OnVerdict;
use polkadot_sdk::{
	frame_support, frame_system, pallet_balances,
	sp_arithmetic::{traits::Saturating, Perbill},
	sp_io,
	sp_runtime::{traits::IdentityLookup, AccountId32, BuildStorage},
};

type Block = frame_system::mocking::MockBlock<Runtime>;
type AccountId = AccountId32;

frame_support::construct_runtime!(
	pub enum Runtime {
		System: frame_system,
		Balances: pallet_balances,
		Datanets: pallet_datanets,
		Rewards: pallet_rewards,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Runtime {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = IdentityLookup<AccountId>;
	type AccountData = pallet_balances::AccountData<u64>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Runtime {
	type AccountStore = System;
}

#[derive_impl(pallet_datanets::config_preludes::TestDefaultConfig)]
impl pallet_datanets::Config for Runtime {
	type Currency = Balances;
}

#[derive_impl(pallet_rewards::config_preludes::TestDefaultConfig)]
impl pallet_rewards::Config for Runtime {
	type Currency = Balances;
	type Datanets = Datanets;
}

const DATANET: DatanetId = 0;
/// Rows per leaderboard page, as the CLI's default asks for.
const PAGE: u32 = 20;
/// Queries timed per figure.
const QUERIES: usize = 50;
/// Epochs the verdicts are spread over, so rejections have faded by different amounts.
const EPOCHS: u32 = 8;

/// xorshift64: a fixed stream of words, so every run builds the same state.
struct Words(u64);

impl Words {
	fn next(&mut self) -> u64 {
		self.0 ^= self.0 << 13;
		self.0 ^= self.0 >> 7;
		self.0 ^= self.0 << 17;
		self.0
	}

	fn below(&mut self, bound: u64) -> u64 {
		self.next() % bound
	}
}

fn contributor(index: u64) -> AccountId {
	let mut bytes = [0; 32];
	bytes[..8].copy_from_slice(&index.to_le_bytes());
	bytes[8..16].copy_from_slice(&index.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
	AccountId32::new(bytes)
}

fn verdict(who: &AccountId, accepted: bool) {
	let status = if accepted { ContributionStatus::Accepted } else { ContributionStatus::Rejected };
	<Rewards as OnVerdict<AccountId, u64>>::on_verdict(0, DATANET, who, status, &[]);
}

/// The pallet's old leaderboard: every standing of the datanet decayed, scored and sorted.
fn scan(datanet: DatanetId) -> Vec<(AccountId, u32, Perbill)> {
	let epoch = CurrentEpoch::<Runtime>::get();
	let half_life = Rewards::params().rejection_half_life;
	let mut rows: Vec<_> = Standings::<Runtime>::iter_prefix(datanet)
		.map(|(who, standing)| {
			let factor = score::decay_factor(epoch - standing.as_of, half_life);
			let rejected = standing.rejected.saturating_mul(factor);
			(who, standing.accepted, score::wilson_lower_bound(standing.accepted, rejected))
		})
		.collect();
	rows.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
	rows
}

/// The pallet's old `standing(who)`: every standing's key scanned for the account, then its
/// datanets' leaderboards sorted to find its place. Returns its position in each.
fn scan_standing(who: &AccountId) -> Vec<(DatanetId, usize)> {
	Standings::<Runtime>::iter_keys()
		.filter(|(_, account)| account == who)
		.map(|(datanet, _)| {
			let position = scan(datanet).iter().position(|row| &row.0 == who).expect("ranked");
			(datanet, position)
		})
		.collect()
}

/// Median and slowest of `times`.
fn summary(mut times: Vec<Duration>) -> (Duration, Duration) {
	times.sort();
	(times[times.len() / 2], times[times.len() - 1])
}

fn time<R>(mut run: impl FnMut(usize) -> R, rounds: usize) -> (Duration, Duration) {
	summary(
		(0..rounds)
			.map(|round| {
				let started = Instant::now();
				std::hint::black_box(run(round));
				started.elapsed()
			})
			.collect(),
	)
}

fn ms(duration: Duration) -> String {
	format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

fn main() {
	let n: u64 = std::env::args().nth(1).map_or(100_000, |n| n.parse().expect("a count"));
	let storage = frame_system::GenesisConfig::<Runtime>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);

	let started = Instant::now();
	let verdicts = ext.execute_with(|| {
		let mut words = Words(0x2545_f491_4f6c_dd1d);
		let mut verdicts = 0u64;
		for index in 0..n {
			CurrentEpoch::<Runtime>::put((index * EPOCHS as u64 / n) as u32);
			let who = contributor(index);
			// Most contributors have a few files judged, some many; a third have rejections.
			let accepted = 1 + words.below(4) * words.below(4) + words.below(3);
			let rejected = if words.below(3) == 0 { 1 + words.below(3) } else { 0 };
			for _ in 0..accepted {
				verdict(&who, true);
			}
			for _ in 0..rejected {
				verdict(&who, false);
			}
			verdicts += accepted + rejected;
		}
		verdicts
	});
	ext.commit_all().expect("the state commits");
	println!(
		"state: {n} contributors, {verdicts} verdicts over {EPOCHS} epochs, built in {:.1} s",
		started.elapsed().as_secs_f64()
	);

	// The next epoch turns: settlement re-ranks every standing whose rejections faded.
	let (blocks, reranked, settle_time) = ext.execute_with(|| {
		CurrentEpoch::<Runtime>::put(EPOCHS);
		Unsettled::<Runtime>::put(EPOCHS - 1);
		let fading = pallet_rewards::Fading::<Runtime>::iter_keys().count();
		let started = Instant::now();
		let mut blocks = 0u64;
		while Unsettled::<Runtime>::get() < CurrentEpoch::<Runtime>::get() {
			blocks += 1;
			// Always the epoch's first block, so no further epoch starts while this one settles.
			Rewards::on_initialize(1);
		}
		(blocks, fading, started.elapsed())
	});
	ext.commit_all().expect("the state commits");
	println!(
		"re-ranking at the epoch's turn: {reranked} fading standings in {blocks} blocks of {} steps, \
		 {:.1} µs a standing",
		<<Runtime as pallet_rewards::Config>::MaxSettlementSteps as Get<u32>>::get(),
		settle_time.as_secs_f64() * 1e6 / reranked.max(1) as f64
	);

	ext.execute_with(|| {
		// Correctness first: the index's order and ranks are the scan's.
		let sorted = scan(DATANET);
		let ranks: Vec<u32> = {
			let mut ranks = Vec::with_capacity(sorted.len());
			for (position, row) in sorted.iter().enumerate() {
				let tied = position > 0
					&& (sorted[position - 1].1, sorted[position - 1].2) == (row.1, row.2);
				ranks.push(if tied { ranks[position - 1] } else { position as u32 + 1 });
			}
			ranks
		};
		let starts: Vec<usize> =
			(0..QUERIES).map(|q| q * (sorted.len() - PAGE as usize) / (QUERIES - 1)).collect();
		for &start in &starts {
			let after = (start > 0).then(|| sorted[start - 1].0.clone());
			let page: Vec<LeaderboardEntry<AccountId, u64>> =
				Rewards::leaderboard(DATANET, after, PAGE).expect("ranked");
			for (offset, row) in page.iter().enumerate() {
				let expected = &sorted[start + offset];
				assert_eq!(
					(&row.account, row.accepted, row.score, row.rank),
					(&expected.0, expected.1, expected.2, ranks[start + offset]),
					"row {} of the page at {start}",
					offset
				);
			}
		}
		for &start in &starts {
			let who = &sorted[start].0;
			let standing = Rewards::standing(who);
			assert_eq!(standing.datanets.len(), 1);
			assert_eq!(standing.datanets[0].1.rank, ranks[start], "{who}'s rank");
		}
		println!("checked: {QUERIES} pages and {QUERIES} standings match the scan, ties included");

		let sample = |round: usize| &sorted[starts[round % starts.len()]].0;
		let (scan_page, scan_page_max) =
			time(|_| scan(DATANET).into_iter().take(PAGE as usize).count(), 5);
		let (top, top_max) = time(|_| Rewards::leaderboard(DATANET, None, PAGE), QUERIES);
		let (deep, deep_max) =
			time(|round| Rewards::leaderboard(DATANET, Some(sample(round).clone()), PAGE), QUERIES);
		let (scan_own, scan_own_max) = time(|round| scan_standing(sample(round)), 5);
		let (own, own_max) = time(|round| Rewards::standing(sample(round)), QUERIES);
		println!("\n{n} contributors; median (slowest) of each:");
		println!(
			"leaderboard page of {PAGE}: scan + sort {} ({}), index, first page {} ({}), index, \
			 page after an account anywhere {} ({}), {:.0}× faster",
			ms(scan_page),
			ms(scan_page_max),
			ms(top),
			ms(top_max),
			ms(deep),
			ms(deep_max),
			scan_page.as_secs_f64() / deep.as_secs_f64()
		);
		println!(
			"an account's standings: scan {} ({}), index {} ({}), {:.0}× faster",
			ms(scan_own),
			ms(scan_own_max),
			ms(own),
			ms(own_max),
			scan_own.as_secs_f64() / own.as_secs_f64()
		);
	});
}
