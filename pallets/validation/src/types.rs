//! The validation pallet's types: ballots and their public reason codes, validators' stake,
//! commitments, open polls, verdicts and the published parameters.

use crate::sp_runtime::{traits::Get, Perbill};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use pallet_datanets::{ContributionStatus, DatanetId};
use polkadot_sdk::frame_support::BoundedVec;
use scale_info::TypeInfo;

/// Why a validator rejects a file. The codes are public, so every contributor sees why.
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
pub enum Reason {
	/// Not the format it claims to be, or not one the datanet allows.
	BadFormat,
	/// The bytes do not decode: broken UTF-8, a truncated image, unreadable audio.
	Corrupt,
	/// Well-formed, but not what the datanet collects.
	OffTopic,
	/// Nearly the same as a file already in the datanet.
	NearDuplicate,
	/// Too short, too noisy or too poor to train on.
	LowQuality,
	/// Harmful or unlawful content.
	Unsafe,
	/// Anything else.
	Other,
}

impl Reason {
	/// How many reasons there are.
	pub const COUNT: usize = 7;

	/// Every reason, in code order.
	pub const ALL: [Reason; Reason::COUNT] = [
		Reason::BadFormat,
		Reason::Corrupt,
		Reason::OffTopic,
		Reason::NearDuplicate,
		Reason::LowQuality,
		Reason::Unsafe,
		Reason::Other,
	];

	/// The reason's position in [`Reason::ALL`].
	pub fn index(self) -> usize {
		self as usize
	}

	/// The reason's name for people and command lines: `bad-format`, `corrupt`, `off-topic`,
	/// `near-duplicate`, `low-quality`, `unsafe`, `other`.
	pub fn name(self) -> &'static str {
		match self {
			Reason::BadFormat => "bad-format",
			Reason::Corrupt => "corrupt",
			Reason::OffTopic => "off-topic",
			Reason::NearDuplicate => "near-duplicate",
			Reason::LowQuality => "low-quality",
			Reason::Unsafe => "unsafe",
			Reason::Other => "other",
		}
	}

	/// The reason called `name` (see [`Reason::name`]).
	pub fn from_name(name: &str) -> Option<Reason> {
		Reason::ALL.into_iter().find(|reason| reason.name() == name)
	}
}

/// One validator's judgement of one contribution.
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
pub enum Ballot {
	/// Fit for training.
	Accept,
	/// Unfit, for this reason.
	Reject(Reason),
}

impl Ballot {
	/// The status this ballot argues for.
	pub fn status(self) -> ContributionStatus {
		match self {
			Ballot::Accept => ContributionStatus::Accepted,
			Ballot::Reject(_) => ContributionStatus::Rejected,
		}
	}
}

/// A sealed ballot: `blake2_256(SCALE(ballot, salt, voter))`. See [`crate::commitment`].
pub type Commitment = [u8; 32];

/// A validator's secret, revealed with its ballot.
pub type Salt = [u8; 32];

/// A validator's stake and the datanets it serves.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
#[scale_info(skip_type_params(MaxDatanets))]
pub struct Validator<Balance, BlockNumber, MaxDatanets: Get<u32>> {
	/// Held stake that votes.
	pub bonded: Balance,
	/// The datanets it votes on.
	pub datanets: BoundedVec<DatanetId, MaxDatanets>,
	/// Held stake on its way out: it no longer votes, but can still be slashed.
	pub unbonding: Balance,
	/// When `unbonding` may be withdrawn.
	pub unlocks_at: BlockNumber,
}

/// A validator's sealed ballot on one contribution, and the ballot once revealed.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct CommitRecord<Balance> {
	/// The sealed ballot.
	pub commitment: Commitment,
	/// The voter's bonded stake when it committed: its weight in the tally.
	pub stake: Balance,
	/// The ballot, once revealed.
	pub revealed: Option<Ballot>,
}

/// The running tally of one contribution's vote.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
#[scale_info(skip_type_params(MaxVoters))]
pub struct Poll<AccountId, Balance, MaxVoters: Get<u32>> {
	/// Everyone who committed, in order.
	pub voters: BoundedVec<AccountId, MaxVoters>,
	/// Validators that revealed.
	pub revealed: u32,
	/// Revealed stake for `Accept`.
	pub accept_stake: Balance,
	/// Revealed stake for `Reject`, by reason, in [`Reason::ALL`] order.
	pub reject_stake: [Balance; Reason::COUNT],
}

impl<AccountId, Balance: Default, MaxVoters: Get<u32>> Default
	for Poll<AccountId, Balance, MaxVoters>
{
	fn default() -> Self {
		Self {
			voters: BoundedVec::default(),
			revealed: 0,
			accept_stake: Balance::default(),
			reject_stake: Default::default(),
		}
	}
}

/// How a contribution's vote ended.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct Verdict<Balance, BlockNumber> {
	/// `Accepted`, `Rejected`, or `Expired` without quorum.
	pub status: ContributionStatus,
	/// For a rejection: the reason with the most stake behind it.
	pub reason: Option<Reason>,
	/// Revealed stake for accepting.
	pub accept_stake: Balance,
	/// Revealed stake for rejecting.
	pub reject_stake: Balance,
	/// Validators that revealed.
	pub revealed: u32,
	/// Validators that committed.
	pub committed: u32,
	/// Stake burned from validators over this vote.
	pub slashed: Balance,
	/// The block it was reached in.
	pub decided_at: BlockNumber,
}

/// The validation rules, published on chain and changed only by root.
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
pub struct Params<Balance, BlockNumber> {
	/// Stake needed for each datanet a validator serves.
	pub min_stake_per_datanet: Balance,
	/// Blocks between `unbond` and `withdraw`.
	pub unbonding_delay: BlockNumber,
	/// Blocks after a contribution's block during which validators commit.
	pub commit_period: BlockNumber,
	/// Blocks after the commit window during which they reveal.
	pub reveal_period: BlockNumber,
	/// Revealed ballots needed for a verdict.
	pub quorum: u32,
	/// Share of the revealed stake a verdict needs before anyone is slashed.
	pub supermajority: Perbill,
	/// Share of its stake a validator loses for voting against a supermajority verdict.
	pub wrong_vote_slash: Perbill,
	/// Share of its stake a validator loses for committing and not revealing, when the verdict
	/// has a supermajority.
	pub no_reveal_slash: Perbill,
}
