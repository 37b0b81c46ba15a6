//! The records the pallet keeps: datanets, their rules, contributions and daily usage.

use crate::format::{DataKind, Format};
use crate::frame_support::{
	pallet_prelude::ConstU32, BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// A datanet's identifier, assigned in creation order from 0.
pub type DatanetId = u32;
/// A contribution's identifier, assigned in submission order from 0.
pub type ContributionId = u64;
/// blake2-256 of a file's bytes: how the chain addresses stored content.
pub type ContentHash = [u8; 32];

/// The set of formats a datanet admits, one bit per [`Format`].
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
pub struct FormatSet(pub u16);

impl FormatSet {
	/// The set holding `formats`.
	pub fn of(formats: &[Format]) -> Self {
		Self(formats.iter().fold(0, |bits, format| bits | format.bit()))
	}

	/// Whether `format` is in the set.
	pub fn contains(self, format: Format) -> bool {
		self.0 & format.bit() != 0
	}

	/// Whether the set holds no format.
	pub fn is_empty(self) -> bool {
		self.0 == 0
	}

	/// Whether every format in the set carries `kind`, and no unknown bit is set.
	pub fn fits_kind(self, kind: DataKind) -> bool {
		Format::ALL.iter().fold(0u16, |bits, format| bits | format.bit()) & self.0 == self.0
			&& Format::ALL.iter().all(|format| !self.contains(*format) || format.kind() == kind)
	}
}

/// A datanet's published caps.
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
pub struct Caps {
	/// The largest file admitted, in bytes. At most the runtime's hard cap.
	pub max_file_bytes: u32,
	/// Bytes the datanet admits per day, from all contributors together.
	pub daily_bytes: u64,
}

/// Whether a datanet takes contributions.
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
pub enum DatanetStatus {
	/// Open for contributions.
	Active,
	/// Temporarily closed by its owner; may be resumed.
	Paused,
	/// Closed for good; its deposit was returned. Its contributions stay on record.
	Closed,
}

/// A datanet's human-facing description.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	DebugNoBound,
)]
#[scale_info(skip_type_params(MaxName, MaxSummary, MaxTagLen, MaxTags))]
pub struct Metadata<MaxName, MaxSummary, MaxTagLen, MaxTags>
where
	MaxName: crate::frame_support::traits::Get<u32>,
	MaxSummary: crate::frame_support::traits::Get<u32>,
	MaxTagLen: crate::frame_support::traits::Get<u32>,
	MaxTags: crate::frame_support::traits::Get<u32>,
{
	/// Short name, UTF-8.
	pub name: BoundedVec<u8, MaxName>,
	/// What the datanet collects and why, UTF-8.
	pub summary: BoundedVec<u8, MaxSummary>,
	/// Search tags, UTF-8.
	pub tags: BoundedVec<BoundedVec<u8, MaxTagLen>, MaxTags>,
}

/// Usage within one day, for enforcing daily caps. A record from an earlier day counts as zero.
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
pub struct DailyUsage {
	/// The day (block number / blocks per day) this usage belongs to.
	pub day: u32,
	/// Bytes accepted for submission that day.
	pub bytes: u64,
	/// Files accepted for submission that day.
	pub files: u32,
}

impl DailyUsage {
	/// The usage as seen on `day`: zero if the record is from an earlier day.
	pub fn on(self, day: u32) -> Self {
		if self.day == day {
			self
		} else {
			Self { day, bytes: 0, files: 0 }
		}
	}
}

/// Where a contribution stands. New contributions are `Pending`; the validation pallet moves
/// them on through [`crate::ContributionRegistry`].
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
pub enum ContributionStatus {
	/// Waiting for validators' verdict.
	Pending,
	/// Validators judged it fit for training.
	Accepted,
	/// Validators judged it unfit.
	Rejected,
	/// No quorum was reached in time; it costs the contributor nothing.
	Expired,
}

/// The small on-chain record of a contribution. The bytes themselves live in the node's
/// transaction index, addressed by `hash`.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct Contribution<AccountId, BlockNumber> {
	/// blake2-256 of the bytes.
	pub hash: ContentHash,
	/// Size in bytes.
	pub size: u32,
	/// Format detected from the bytes.
	pub format: Format,
	/// Who submitted it.
	pub contributor: AccountId,
	/// The datanet it belongs to.
	pub datanet: DatanetId,
	/// Block it was included in.
	pub block: BlockNumber,
	/// Its extrinsic's index in that block.
	pub extrinsic_index: u32,
	/// Where it stands.
	pub status: ContributionStatus,
}

/// What [`crate::ContributionRegistry`] tells other pallets about a contribution.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ContributionInfo<AccountId, BlockNumber> {
	/// Who submitted it.
	pub contributor: AccountId,
	/// The datanet it belongs to.
	pub datanet: DatanetId,
	/// blake2-256 of its bytes.
	pub hash: ContentHash,
	/// The block it was included in: validation's windows count from here.
	pub submitted_at: BlockNumber,
	/// Where it stands.
	pub status: ContributionStatus,
}

/// A bounded tag list, as accepted by calls.
pub type Tags<MaxTagLen, MaxTags> = BoundedVec<BoundedVec<u8, MaxTagLen>, MaxTags>;

/// The largest number of formats a set can name (one per [`Format`] variant).
pub type MaxFormats = ConstU32<16>;
