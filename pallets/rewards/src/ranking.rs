//! The rank index: every datanet's standings kept in score order, so that a leaderboard page,
//! an account's rank and its standings are read without sorting or scanning the datanet.
//!
//! - `Ranked` holds one key per standing, `(rank key, account)`, under the `Identity` hasher,
//!   so storage order is rank order and a page is a walk from where the last one stopped.
//! - `RankGroups` counts the standings that share a rank key; they share a rank.
//! - `RankBuckets` counts them per score range.
//!
//! A rank is 1 + the buckets above + the groups ahead in its own bucket: a sum over at most
//! `RANK_BUCKETS` integers and a walk over the distinct scores of one range, however many
//! contributors the datanet has. Moving a standing costs a constant number of writes.

use crate::sp_arithmetic::{
	traits::{Saturating, Zero},
	PerThing, Perbill,
};
use crate::*;
use alloc::vec::Vec;
use frame_support::{pallet_prelude::*, BoundedVec};

/// Score ranges a datanet's standings are counted in.
pub const RANK_BUCKETS: usize = 1024;

/// The inverted score at the head of a rank key: 0 for a perfect score.
fn inverted_score(key: &RankKey) -> u64 {
	u32::from_be_bytes([key[0], key[1], key[2], key[3]]) as u64
}

const SCORES: u64 = Perbill::ACCURACY as u64 + 1;

/// The score range a key falls in, best first.
fn bucket(key: &RankKey) -> usize {
	(inverted_score(key) * RANK_BUCKETS as u64 / SCORES) as usize
}

/// The first inverted score of `bucket`, as the leading bytes of the keys in it.
fn bucket_start(bucket: usize) -> [u8; 4] {
	((bucket as u64 * SCORES).div_ceil(RANK_BUCKETS as u64) as u32).to_be_bytes()
}

impl<T: Config> Pallet<T> {
	/// Where `standing` sorts.
	pub(crate) fn key_of(standing: &StandingOf<T>) -> RankKey {
		rank_key(standing.score, standing.accepted)
	}

	/// Whether `standing`'s score still rises as its rejections fade.
	pub(crate) fn is_fading(standing: &StandingOf<T>) -> bool {
		standing.accepted > 0 && !standing.rejected.is_zero()
	}

	/// Moves `who` in `datanet`'s order from `old` (`None` for a new standing) to `new`.
	pub(crate) fn place(
		datanet: DatanetId,
		who: &T::AccountId,
		old: Option<RankKey>,
		new: RankKey,
	) {
		if old == Some(new) {
			return;
		}
		let mut counts = RankBuckets::<T>::get(datanet).unwrap_or([0; RANK_BUCKETS]);
		if let Some(old) = old {
			Ranked::<T>::remove(datanet, (old, who.clone()));
			RankGroups::<T>::mutate_exists(datanet, old, |size| {
				*size = size.and_then(|size| size.checked_sub(1)).filter(|size| *size > 0)
			});
			let count = &mut counts[bucket(&old)];
			*count = count.saturating_sub(1);
		}
		Ranked::<T>::insert(datanet, (new, who.clone()), ());
		RankGroups::<T>::mutate(datanet, new, |size| *size = size.saturating_add(1));
		let count = &mut counts[bucket(&new)];
		*count = count.saturating_add(1);
		RankBuckets::<T>::insert(datanet, counts);
	}

	/// The rank of a standing sorted at `key` in `datanet`: 1 + the standings sorted before it.
	pub(crate) fn rank_of(datanet: DatanetId, key: &RankKey) -> u32 {
		let bucket = bucket(key);
		let above = RankBuckets::<T>::get(datanet).map_or(0u32, |counts| {
			counts[..bucket].iter().fold(0, |sum, n| sum.saturating_add(*n))
		});
		let mut groups = RankGroups::<T>::iter_prefix(datanet);
		let mut start = groups.prefix().to_vec();
		start.extend_from_slice(&bucket_start(bucket));
		groups.set_last_raw_key(start);
		let ahead = groups
			.take_while(|(group, _)| group < key)
			.fold(0u32, |sum, (_, size)| sum.saturating_add(size));
		above.saturating_add(ahead).saturating_add(1)
	}

	/// A row for `standing`, its rejections decayed to the epoch it was ranked at.
	fn entry<A>(
		standing: StandingOf<T>,
		rank: u32,
		account: A,
		half_life: u32,
	) -> LeaderboardEntry<A, BalanceOf<T>> {
		let age = standing.ranked_at.saturating_sub(standing.as_of);
		LeaderboardEntry {
			rank,
			account,
			accepted: standing.accepted,
			rejected: standing.rejected.saturating_mul(score::decay_factor(age, half_life)),
			score: standing.score,
			earned: standing.earned,
		}
	}

	/// Up to `limit` of `datanet`'s contributors in rank order: from the best, or from the one
	/// after `after`. `None` when `after` has no standing in the datanet.
	pub fn leaderboard(
		datanet: DatanetId,
		after: Option<T::AccountId>,
		limit: u32,
	) -> Option<Vec<LeaderboardEntry<T::AccountId, BalanceOf<T>>>> {
		let half_life = Self::params().rejection_half_life;
		// The rank key of the group the walk is in, and that group's rank.
		let (mut keys, mut group) = match after {
			None => (Ranked::<T>::iter_key_prefix(datanet), None),
			Some(account) => {
				let key = Self::key_of(&Standings::<T>::get(datanet, &account)?);
				let rank = Self::rank_of(datanet, &key);
				let from = Ranked::<T>::hashed_key_for(datanet, (key, account));
				(Ranked::<T>::iter_key_prefix_from(datanet, from), Some((key, rank)))
			},
		};
		let mut rows = Vec::new();
		while rows.len() < limit as usize {
			let Some((key, account)) = keys.next() else { break };
			let rank = match group {
				Some((current, rank)) if current == key => rank,
				Some((current, rank)) => {
					rank.saturating_add(RankGroups::<T>::get(datanet, current))
				},
				None => 1,
			};
			group = Some((key, rank));
			if let Some(standing) = Standings::<T>::get(datanet, &account) {
				rows.push(Self::entry(standing, rank, account, half_life));
			}
		}
		Some(rows)
	}

	/// `who`'s claimable rewards and its rank and record in every datanet it contributed to,
	/// in datanet order.
	pub fn standing(who: &T::AccountId) -> AccountStanding<BalanceOf<T>> {
		let half_life = Self::params().rejection_half_life;
		let mut datanets: Vec<_> = StandingIn::<T>::iter_key_prefix(who)
			.filter_map(|datanet| {
				let standing = Standings::<T>::get(datanet, who)?;
				let rank = Self::rank_of(datanet, &Self::key_of(&standing));
				Some((datanet, Self::entry(standing, rank, (), half_life)))
			})
			.collect();
		datanets.sort_unstable_by_key(|(datanet, _)| *datanet);
		AccountStanding { claimable: Claimable::<T>::get(who), datanets }
	}

	/// Re-ranks up to `limit` fading standings at the current epoch, continuing from where the
	/// last call stopped. Returns the standings visited and whether none is left.
	pub(crate) fn rerank(limit: u32) -> (u32, bool) {
		let epoch = CurrentEpoch::<T>::get();
		let half_life = Self::params().rejection_half_life;
		let mut fading = match RerankCursor::<T>::take() {
			Some(cursor) => Fading::<T>::iter_keys_from(cursor.into_inner()),
			None => Fading::<T>::iter_keys(),
		};
		let mut done = 0;
		while done < limit {
			let Some((datanet, who)) = fading.next() else { return (done, true) };
			done += 1;
			let Some(mut standing) = Standings::<T>::get(datanet, &who) else {
				Fading::<T>::remove(datanet, &who);
				continue;
			};
			if standing.ranked_at >= epoch {
				continue;
			}
			let old = Self::key_of(&standing);
			let factor = score::decay_factor(epoch.saturating_sub(standing.as_of), half_life);
			let rejected = standing.rejected.saturating_mul(factor);
			if rejected.is_zero() {
				standing.rejected = rejected;
				standing.as_of = epoch;
				Fading::<T>::remove(datanet, &who);
			}
			standing.score = score::wilson_lower_bound(standing.accepted, rejected);
			standing.ranked_at = epoch;
			let new = Self::key_of(&standing);
			Standings::<T>::insert(datanet, &who, standing);
			Self::place(datanet, &who, Some(old), new);
		}
		// A raw key of `Fading` is a few dozen bytes, well inside the bound.
		RerankCursor::<T>::set(BoundedVec::try_from(fading.last_raw_key().to_vec()).ok());
		(done, false)
	}

	/// The index holds every standing exactly once, at the key its score gives, with counts
	/// that add up; each account lists its datanets; every fading standing is marked.
	pub(crate) fn check_ranking() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::BTreeMap;
		let mut groups = BTreeMap::<(DatanetId, RankKey), u32>::new();
		let mut buckets = BTreeMap::<DatanetId, [u32; RANK_BUCKETS]>::new();
		let mut standings = 0usize;
		for (datanet, who, standing) in Standings::<T>::iter() {
			standings += 1;
			let key = Self::key_of(&standing);
			ensure!(
				Ranked::<T>::contains_key(datanet, (key, who.clone())),
				"a standing is missing from the rank index or sits at a stale key"
			);
			ensure!(
				StandingIn::<T>::contains_key(&who, datanet),
				"an account's datanet is unlisted"
			);
			ensure!(
				Fading::<T>::contains_key(datanet, &who) == Self::is_fading(&standing),
				"a standing's fading mark disagrees with its record"
			);
			*groups.entry((datanet, key)).or_default() += 1;
			buckets.entry(datanet).or_insert([0; RANK_BUCKETS])[bucket(&key)] += 1;
		}
		ensure!(Ranked::<T>::iter_keys().count() == standings, "the rank index has extra entries");
		ensure!(
			StandingIn::<T>::iter_keys().count() == standings,
			"an account lists a datanet twice"
		);
		ensure!(
			RankGroups::<T>::iter().map(|(d, k, n)| ((d, k), n)).collect::<BTreeMap<_, _>>()
				== groups,
			"rank groups miscount their standings"
		);
		ensure!(
			RankBuckets::<T>::iter()
				.filter(|(_, c)| c.iter().any(|n| *n > 0))
				.collect::<BTreeMap<_, _>>()
				== buckets,
			"rank buckets miscount their standings"
		);
		Ok(())
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn keys_sort_best_first_and_buckets_follow_them() {
		let best = rank_key(Perbill::one(), 10);
		let more = rank_key(Perbill::from_percent(50), 10);
		let fewer = rank_key(Perbill::from_percent(50), 3);
		let worst = rank_key(Perbill::zero(), 0);
		assert!(best < more && more < fewer && fewer < worst);
		assert_eq!(bucket(&best), 0);
		assert_eq!(bucket(&worst), RANK_BUCKETS - 1);
		assert!(bucket(&more) <= bucket(&fewer));
		for b in [0, 1, 511, RANK_BUCKETS - 1] {
			let mut key = [0; 8];
			key[..4].copy_from_slice(&bucket_start(b));
			assert_eq!(bucket(&key), b, "bucket {b} starts inside itself");
			let before = inverted_score(&key).saturating_sub(1) as u32;
			key[..4].copy_from_slice(&before.to_be_bytes());
			if b > 0 {
				assert_eq!(bucket(&key), b - 1, "the score before bucket {b} is in the one above");
			}
		}
	}
}
