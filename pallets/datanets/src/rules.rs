//! The submission rules as a pure function of a datanet's rules, today's usage and the bytes.
//!
//! The pallet applies them on chain; the wallet CLI applies the very same function to values
//! it reads from the chain, so a contributor sees the reason for a refusal before paying a fee.

use crate::{
	format::{self, DataKind, Format},
	types::{Caps, ContentHash, DailyUsage, DatanetStatus, FormatSet},
};

/// Everything a submission is judged against, besides its bytes.
#[derive(Clone, Copy, Debug)]
pub struct SubmissionRules {
	/// The datanet's kind.
	pub kind: DataKind,
	/// Its allow-list.
	pub formats: FormatSet,
	/// Its caps.
	pub caps: Caps,
	/// Whether it takes contributions.
	pub status: DatanetStatus,
	/// The contributor's usage today, across datanets.
	pub account_usage: DailyUsage,
	/// The datanet's usage today.
	pub datanet_usage: DailyUsage,
	/// Files per account per day.
	pub account_daily_files: u32,
	/// Bytes per account per day.
	pub account_daily_bytes: u64,
}

/// Why a submission is refused, with the numbers involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
	/// The datanet is paused.
	Paused,
	/// The datanet is closed.
	Closed,
	/// The file has no bytes.
	EmptyFile,
	/// The file passes the per-file cap.
	FileTooLarge {
		/// The file's size.
		size: u64,
		/// The cap.
		max: u32,
	},
	/// No known format matches.
	UnrecognizedFormat,
	/// The bytes are of another kind than the datanet's.
	WrongKind {
		/// What the bytes are.
		detected: Format,
		/// What the datanet holds.
		expected: DataKind,
	},
	/// The format is not in the allow-list.
	FormatNotAllowed {
		/// What the bytes are.
		detected: Format,
	},
	/// The same bytes are already in the datanet.
	Duplicate,
	/// The contributor's files today reached the cap.
	DailyFileCapReached {
		/// Files per day.
		limit: u32,
	},
	/// The file would take the contributor past the daily byte cap.
	DailyByteCapReached {
		/// Bytes already used today.
		used: u64,
		/// This file's size.
		size: u64,
		/// Bytes per day.
		limit: u64,
	},
	/// The file would take the datanet past its daily byte cap.
	DatanetDailyCapReached {
		/// Bytes the datanet took today.
		used: u64,
		/// This file's size.
		size: u64,
		/// The datanet's bytes per day.
		limit: u64,
	},
}

/// A submission that passed every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
	/// The detected format.
	pub format: Format,
	/// blake2-256 of the bytes.
	pub hash: ContentHash,
	/// The contributor's usage after this file.
	pub account_usage: DailyUsage,
	/// The datanet's usage after this file.
	pub datanet_usage: DailyUsage,
}

/// blake2-256 of `data`: the content address of a contribution.
pub fn content_hash(data: &[u8]) -> ContentHash {
	crate::sp_io::hashing::blake2_256(data)
}

/// Judges `data` against `rules`. `is_duplicate` says whether a hash is already in the datanet.
pub fn check(
	rules: &SubmissionRules,
	data: &[u8],
	is_duplicate: impl FnOnce(&ContentHash) -> bool,
) -> Result<Admitted, Refusal> {
	match rules.status {
		DatanetStatus::Active => {},
		DatanetStatus::Paused => return Err(Refusal::Paused),
		DatanetStatus::Closed => return Err(Refusal::Closed),
	}
	if data.is_empty() {
		return Err(Refusal::EmptyFile);
	}
	let size = data.len() as u64;
	if size > u64::from(rules.caps.max_file_bytes) {
		return Err(Refusal::FileTooLarge { size, max: rules.caps.max_file_bytes });
	}
	let detected = format::detect(data).ok_or(Refusal::UnrecognizedFormat)?;
	if detected.kind() != rules.kind {
		return Err(Refusal::WrongKind { detected, expected: rules.kind });
	}
	if !rules.formats.contains(detected) {
		return Err(Refusal::FormatNotAllowed { detected });
	}
	let hash = content_hash(data);
	if is_duplicate(&hash) {
		return Err(Refusal::Duplicate);
	}
	let mut account = rules.account_usage;
	if account.files >= rules.account_daily_files {
		return Err(Refusal::DailyFileCapReached { limit: rules.account_daily_files });
	}
	if account.bytes.saturating_add(size) > rules.account_daily_bytes {
		return Err(Refusal::DailyByteCapReached {
			used: account.bytes,
			size,
			limit: rules.account_daily_bytes,
		});
	}
	account.files += 1;
	account.bytes += size;
	let mut datanet = rules.datanet_usage;
	if datanet.bytes.saturating_add(size) > rules.caps.daily_bytes {
		return Err(Refusal::DatanetDailyCapReached {
			used: datanet.bytes,
			size,
			limit: rules.caps.daily_bytes,
		});
	}
	datanet.files = datanet.files.saturating_add(1);
	datanet.bytes += size;
	Ok(Admitted { format: detected, hash, account_usage: account, datanet_usage: datanet })
}

#[cfg(feature = "std")]
impl core::fmt::Display for Refusal {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		match self {
			Refusal::Paused => write!(f, "the datanet is paused by its owner"),
			Refusal::Closed => write!(f, "the datanet is closed"),
			Refusal::EmptyFile => write!(f, "the file is empty"),
			Refusal::FileTooLarge { size, max } =>
				write!(f, "the file is {size} bytes; the datanet's per-file cap is {max} bytes"),
			Refusal::UnrecognizedFormat => write!(
				f,
				"its bytes match no supported format (txt, md, jsonl, csv, pdf, docx, png, jpeg, webp, tiff, bmp, wav, mp3, flac)"
			),
			Refusal::WrongKind { detected, expected } => write!(
				f,
				"its bytes are {} ({:?} data), but the datanet holds {:?} data",
				detected.name(),
				detected.kind(),
				expected
			),
			Refusal::FormatNotAllowed { detected } =>
				write!(f, "its bytes are {}, which the datanet's allow-list does not admit", detected.name()),
			Refusal::Duplicate => write!(f, "these exact bytes are already in the datanet"),
			Refusal::DailyFileCapReached { limit } =>
				write!(f, "you have submitted {limit} files today, the daily limit per account"),
			Refusal::DailyByteCapReached { used, size, limit } => write!(
				f,
				"you have submitted {used} bytes today; {size} more would pass the daily limit of {limit} bytes per account"
			),
			Refusal::DatanetDailyCapReached { used, size, limit } => write!(
				f,
				"the datanet took {used} bytes today; {size} more would pass its daily cap of {limit} bytes"
			),
		}
	}
}
