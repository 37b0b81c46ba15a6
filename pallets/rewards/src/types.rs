//! The rewards pallet's types: the published parameters, each contributor's standing, and the
//! per-epoch records that settlement pays out from.

use crate::sp_arithmetic::{FixedU128, PerThing, Perbill};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use pallet_datanets::DatanetId;
use scale_info::TypeInfo;

/// Epochs are numbered from 0 at genesis.
pub type EpochIndex = u32;

/// The published reward rules. Root may change them; a new epoch length applies from the next
/// epoch.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	PartialEq,
	Eq,
	Debug,
	serde::Serialize,
	serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct RewardParams<Balance> {
	/// Blocks per epoch.
	pub epoch_length: u32,
	/// Minted into the pool of each datanet that had a verdict in the epoch.
	pub issuance_per_datanet: Balance,
	/// Epochs after which a rejection weighs half as much.
	pub rejection_half_life: u32,
	/// The contributors' part of a pool, shared by accepted-this-epoch × score.
	pub contributors_share: Perbill,
	/// The validators' part, shared by the stake that voted with the verdicts.
	pub validators_share: Perbill,
	/// The datanet owner's part.
	pub owner_share: Perbill,
}

/// One contributor's record in one datanet: the ranking's inputs and lifetime earnings.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	PartialEq,
	Eq,
	Debug,
	Default,
)]
pub struct Standing<Balance> {
	/// Accepted contributions, ever.
	pub accepted: u32,
	/// Rejected contributions, each decayed by its age, as of epoch `as_of`.
	pub rejected: FixedU128,
	/// The epoch `rejected` was last decayed to.
	pub as_of: EpochIndex,
	/// Rewards earned here, ever.
	pub earned: Balance,
	/// The score this standing is ranked by: the Wilson lower bound with `rejected` decayed to
	/// epoch `ranked_at`.
	pub score: Perbill,
	/// The epoch the ranking last caught up with: at the latest verdict, or when settlement
	/// re-ranked the standing because its rejections faded.
	pub ranked_at: EpochIndex,
}

/// A contributor's claim on one epoch's pool of one datanet.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Default,
)]
pub struct EpochShare {
	/// Contributions accepted this epoch.
	pub accepted: u32,
	/// The contributor's score after its latest verdict this epoch.
	pub score: Perbill,
}

impl EpochShare {
	/// accepted × score, in parts per billion.
	pub fn weight(&self) -> u128 {
		self.accepted as u128 * self.score.deconstruct() as u128
	}
}

/// What one datanet did in one epoch: the denominators of its payouts.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	PartialEq,
	Eq,
	Debug,
	Default,
)]
pub struct EpochTally<Balance> {
	/// Verdicts reached (accepted or rejected).
	pub verdicts: u32,
	/// Σ accepted × score over its contributors.
	pub contributor_weight: u128,
	/// Σ stake that voted with the verdicts.
	pub agreeing_stake: Balance,
}

/// One epoch's pool of one datanet, while its payouts are being made.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	PartialEq,
	Eq,
	Debug,
	Default,
)]
pub struct Pot<Balance> {
	/// The contributors' part.
	pub contributors: Balance,
	/// The validators' part.
	pub validators: Balance,
	/// What has not been paid yet; rounding dust returns to the pool.
	pub unpaid: Balance,
	/// The epoch's tally, the payouts' denominators.
	pub tally: EpochTally<Balance>,
}

/// A standing's place in its datanet's order, as the storage key that sorts it: the score, then
/// the accepted count, each inverted and big-endian so that byte order is best first.
pub type RankKey = [u8; 8];

/// The sort key of a standing with `score` and `accepted` contributions.
pub fn rank_key(score: Perbill, accepted: u32) -> RankKey {
	let mut key = [0; 8];
	key[..4].copy_from_slice(&(Perbill::ACCURACY - score.deconstruct()).to_be_bytes());
	key[4..].copy_from_slice(&(u32::MAX - accepted).to_be_bytes());
	key
}

/// Where settlement of finished epochs stands.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Default,
)]
pub enum SettlementPhase {
	/// Re-ranking the standings whose rejections faded with the new epoch.
	#[default]
	Rerank,
	/// Minting each active datanet's issuance and splitting its pool.
	OpenPots,
	/// Crediting contributors.
	PayContributors,
	/// Crediting validators.
	PayValidators,
	/// Returning rounding dust to the pools.
	ClosePots,
}

impl SettlementPhase {
	/// The phase after this one; `None` after the last.
	pub fn next(self) -> Option<Self> {
		match self {
			Self::Rerank => Some(Self::OpenPots),
			Self::OpenPots => Some(Self::PayContributors),
			Self::PayContributors => Some(Self::PayValidators),
			Self::PayValidators => Some(Self::ClosePots),
			Self::ClosePots => None,
		}
	}
}

/// One row of a datanet's leaderboard. Contributors with the same score and accepted count
/// share a rank (1, 2, 2, 4).
#[derive(Encode, Decode, TypeInfo, Clone, PartialEq, Eq, Debug)]
pub struct LeaderboardEntry<AccountId, Balance> {
	/// 1 for the best score.
	pub rank: u32,
	/// The contributor.
	pub account: AccountId,
	/// Accepted contributions.
	pub accepted: u32,
	/// Rejected contributions, decayed to the epoch the standing was last ranked at: the
	/// current epoch, once settlement has re-ranked the standings a new epoch faded.
	pub rejected: FixedU128,
	/// The Wilson lower bound of the acceptance rate.
	pub score: Perbill,
	/// Rewards earned in this datanet.
	pub earned: Balance,
}

/// What a credited reward was earned by.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub enum RewardSource {
	/// A contributor's part of a datanet's epoch pool, for accepted contributions.
	Contributions,
	/// A validator's part of a datanet's epoch pool, for votes with the verdict.
	Validation,
	/// A datanet owner's part of its epoch pool.
	Ownership,
	/// Fine-tuning fees: a worker's pay for a job, and contributors' shares of its fee by
	/// attribution.
	Training,
	/// Paid inference: a server operator's part of a payment, and the trainer's and
	/// contributors' shares of the rest.
	Inference,
}

/// Rewards credited to an account and not claimed yet, by what earned them.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Default,
	PartialEq,
	Eq,
	Debug,
)]
pub struct Claims<Balance> {
	/// See [`RewardSource::Contributions`].
	pub contributions: Balance,
	/// See [`RewardSource::Validation`].
	pub validation: Balance,
	/// See [`RewardSource::Ownership`].
	pub ownership: Balance,
	/// See [`RewardSource::Training`].
	pub training: Balance,
	/// See [`RewardSource::Inference`].
	pub inference: Balance,
}

impl<Balance: crate::sp_arithmetic::traits::Saturating + Copy> Claims<Balance> {
	/// Adds `amount` to `source`'s balance.
	pub fn credit(&mut self, source: RewardSource, amount: Balance) {
		let balance = match source {
			RewardSource::Contributions => &mut self.contributions,
			RewardSource::Validation => &mut self.validation,
			RewardSource::Ownership => &mut self.ownership,
			RewardSource::Training => &mut self.training,
			RewardSource::Inference => &mut self.inference,
		};
		*balance = balance.saturating_add(amount);
	}

	/// Every source together: what `claim` pays.
	pub fn total(&self) -> Balance {
		self.contributions
			.saturating_add(self.validation)
			.saturating_add(self.ownership)
			.saturating_add(self.training)
			.saturating_add(self.inference)
	}
}

/// One account's standing across the chain.
#[derive(Encode, Decode, TypeInfo, Clone, PartialEq, Eq, Debug)]
pub struct AccountStanding<Balance> {
	/// Credited and not yet claimed, by what earned it.
	pub claimable: Claims<Balance>,
	/// Its rank and record in each datanet it contributed to.
	pub datanets: alloc::vec::Vec<(DatanetId, LeaderboardEntry<(), Balance>)>,
}

/// The epoch clock and settlement progress.
#[derive(Encode, Decode, TypeInfo, Clone, PartialEq, Eq, Debug)]
pub struct EpochStatus<BlockNumber> {
	/// The current epoch.
	pub epoch: EpochIndex,
	/// The block it started at.
	pub started_at: BlockNumber,
	/// Its length in blocks.
	pub length: u32,
	/// The oldest epoch not fully paid out yet; equal to `epoch` when all are.
	pub unsettled: EpochIndex,
}
