//! Format detection from magic bytes.
//!
//! A contributor's declared file name is never trusted: the pallet looks at the bytes. Each
//! detector is cheap (it reads a fixed-size prefix, except for the UTF-8 check of text, which is
//! linear in the file and is what the per-byte weight pays for).

use crate::frame_support::PalletError;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// The kind of data a datanet holds. Fixed when the datanet is created.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	PalletError,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub enum DataKind {
	/// Documents: txt, md, jsonl, csv, pdf, docx.
	Text,
	/// Pictures: png, jpeg, webp, tiff, bmp.
	Image,
	/// Sound: wav, mp3, flac.
	Audio,
}

/// A file format the chain recognises.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	PalletError,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub enum Format {
	/// Plain UTF-8 text (also Markdown: the two cannot be told apart from bytes).
	Txt,
	/// JSON lines: every non-empty line is a JSON object.
	Jsonl,
	/// Comma-separated values: UTF-8 with the same number of fields on every line.
	Csv,
	/// Portable Document Format (`%PDF-`).
	Pdf,
	/// Office Open XML document: a zip archive holding `word/`.
	Docx,
	/// Portable Network Graphics.
	Png,
	/// JPEG (JFIF/EXIF).
	Jpeg,
	/// WebP (RIFF container, `WEBP`).
	Webp,
	/// TIFF, either byte order.
	Tiff,
	/// Windows bitmap.
	Bmp,
	/// WAVE (RIFF container, `WAVE`).
	Wav,
	/// MPEG-1/2 layer III, with or without an ID3 tag.
	Mp3,
	/// Free Lossless Audio Codec.
	Flac,
}

impl Format {
	/// Every format, in declaration order.
	pub const ALL: [Format; 13] = [
		Format::Txt,
		Format::Jsonl,
		Format::Csv,
		Format::Pdf,
		Format::Docx,
		Format::Png,
		Format::Jpeg,
		Format::Webp,
		Format::Tiff,
		Format::Bmp,
		Format::Wav,
		Format::Mp3,
		Format::Flac,
	];

	/// The name people write for this format, as a lower-case file extension.
	pub fn name(self) -> &'static str {
		use Format::*;
		match self {
			Txt => "txt",
			Jsonl => "jsonl",
			Csv => "csv",
			Pdf => "pdf",
			Docx => "docx",
			Png => "png",
			Jpeg => "jpeg",
			Webp => "webp",
			Tiff => "tiff",
			Bmp => "bmp",
			Wav => "wav",
			Mp3 => "mp3",
			Flac => "flac",
		}
	}

	/// This format's bit in a [`crate::types::FormatSet`].
	pub fn bit(self) -> u16 {
		1 << (self as u16)
	}

	/// The formats of `kind`.
	pub fn of_kind(kind: DataKind) -> impl Iterator<Item = Format> {
		Self::ALL.into_iter().filter(move |format| format.kind() == kind)
	}

	/// The kind of data this format carries.
	pub fn kind(self) -> DataKind {
		use Format::*;
		match self {
			Txt | Jsonl | Csv | Pdf | Docx => DataKind::Text,
			Png | Jpeg | Webp | Tiff | Bmp => DataKind::Image,
			Wav | Mp3 | Flac => DataKind::Audio,
		}
	}
}

/// Detects the format of `bytes`, or `None` when no known format matches.
pub fn detect(bytes: &[u8]) -> Option<Format> {
	detect_binary(bytes).or_else(|| detect_text(bytes))
}

fn detect_binary(bytes: &[u8]) -> Option<Format> {
	let starts = |magic: &[u8]| bytes.starts_with(magic);
	let riff_of = |form: &[u8; 4]| bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == form;
	if starts(b"\x89PNG\r\n\x1a\n") {
		Some(Format::Png)
	} else if starts(&[0xFF, 0xD8, 0xFF]) {
		Some(Format::Jpeg)
	} else if riff_of(b"WEBP") {
		Some(Format::Webp)
	} else if riff_of(b"WAVE") {
		Some(Format::Wav)
	} else if starts(b"II*\0") || starts(b"MM\0*") {
		Some(Format::Tiff)
	} else if starts(b"BM") && bytes.len() >= 26 && bmp_header_is_consistent(bytes) {
		Some(Format::Bmp)
	} else if starts(b"%PDF-") {
		Some(Format::Pdf)
	} else if starts(b"fLaC") {
		Some(Format::Flac)
	} else if starts(b"ID3") || is_mpeg_audio_frame(bytes) {
		Some(Format::Mp3)
	} else if starts(b"PK\x03\x04") && zip_has_entry_prefix(bytes, b"word/") {
		Some(Format::Docx)
	} else {
		None
	}
}

/// "BM" alone is too weak (any text may start with it): the header's file size must match.
fn bmp_header_is_consistent(bytes: &[u8]) -> bool {
	let declared = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize;
	declared == bytes.len()
}

/// An MPEG audio frame header: 11 sync bits, a valid version, layer III, a valid bitrate and
/// sample rate.
fn is_mpeg_audio_frame(bytes: &[u8]) -> bool {
	if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] & 0xE0 != 0xE0 {
		return false;
	}
	let version = (bytes[1] >> 3) & 0b11;
	let layer = (bytes[1] >> 1) & 0b11;
	let bitrate = bytes[2] >> 4;
	let sample_rate = (bytes[2] >> 2) & 0b11;
	version != 0b01 && layer == 0b01 && bitrate != 0 && bitrate != 0xF && sample_rate != 0b11
}

/// Whether a zip archive's local file headers name an entry starting with `prefix`.
/// Walks local headers from the start; stops at the first non-header (central directory).
fn zip_has_entry_prefix(bytes: &[u8], prefix: &[u8]) -> bool {
	let mut offset = 0usize;
	// A docx puts `word/` within its first few entries; bound the walk.
	for _ in 0..64 {
		let Some(header) = bytes.get(offset..offset + 30) else { return false };
		if &header[..4] != b"PK\x03\x04" {
			return false;
		}
		let flags = u16::from_le_bytes([header[6], header[7]]);
		let compressed = u32::from_le_bytes([header[18], header[19], header[20], header[21]]);
		let name_len = u16::from_le_bytes([header[26], header[27]]) as usize;
		let extra_len = u16::from_le_bytes([header[28], header[29]]) as usize;
		let Some(name) = bytes.get(offset + 30..offset + 30 + name_len) else { return false };
		if name.starts_with(prefix) {
			return true;
		}
		// With a data descriptor (bit 3) the size is not in the local header: stop.
		if flags & 0x08 != 0 {
			return false;
		}
		offset = match offset
			.checked_add(30 + name_len + extra_len)
			.and_then(|o| o.checked_add(compressed as usize))
		{
			Some(next) => next,
			None => return false,
		};
	}
	false
}

fn detect_text(bytes: &[u8]) -> Option<Format> {
	let text = core::str::from_utf8(bytes).ok()?;
	if text.is_empty() || text.contains('\0') {
		return None;
	}
	if is_jsonl(text) {
		Some(Format::Jsonl)
	} else if is_csv(text) {
		Some(Format::Csv)
	} else {
		Some(Format::Txt)
	}
}

fn non_empty_lines(text: &str) -> impl Iterator<Item = &str> {
	text.lines().map(str::trim).filter(|line| !line.is_empty())
}

/// Every non-empty line looks like a JSON object. Full JSON validation is the validators' job;
/// on chain a cheap structural check suffices to tell jsonl from prose.
fn is_jsonl(text: &str) -> bool {
	let mut lines = non_empty_lines(text).peekable();
	lines.peek().is_some() && lines.all(looks_like_json_object)
}

fn looks_like_json_object(line: &str) -> bool {
	line.starts_with('{') && line.ends_with('}') && line.contains(':')
}

/// Why the text `bytes` are not `wanted` (JSON lines or CSV), naming the first line that breaks
/// its structure, for the person whose file was refused. `None` for other formats, for bytes
/// that are not text, and for text that is `wanted`.
#[cfg(feature = "std")]
pub fn why_not(bytes: &[u8], wanted: Format) -> Option<String> {
	let text = core::str::from_utf8(bytes).ok()?;
	let mut lines = text
		.lines()
		.enumerate()
		.map(|(index, line)| (index + 1, line.trim()))
		.filter(|(_, l)| !l.is_empty());
	let preview = |line: &str| {
		let short: String = line.chars().take(40).collect();
		if short.len() < line.len() {
			format!("{short}…")
		} else {
			short
		}
	};
	match wanted {
		Format::Jsonl => {
			let (number, line) = lines.find(|(_, line)| !looks_like_json_object(line))?;
			Some(format!("line {number} is not a JSON object: `{}`", preview(line)))
		},
		Format::Csv => {
			let (_, header) = lines.next()?;
			let width = csv_field_count(header);
			if width < 2 {
				return Some("the first line has one field; CSV needs at least two".into());
			}
			let mut rows = 0;
			for (number, line) in lines {
				let fields = csv_field_count(line);
				if fields != width {
					return Some(format!(
						"line {number} has {fields} fields; the first line has {width}"
					));
				}
				rows += 1;
			}
			(rows == 0).then(|| "CSV needs a header line and at least one row".into())
		},
		_ => None,
	}
}

/// At least two lines, at least two fields, and the same number of comma-separated fields on
/// every line (quoted fields may hold commas).
fn is_csv(text: &str) -> bool {
	let mut counts = non_empty_lines(text).map(csv_field_count);
	let Some(first) = counts.next() else { return false };
	let mut rows = 1;
	for count in counts {
		if count != first {
			return false;
		}
		rows += 1;
	}
	first >= 2 && rows >= 2
}

fn csv_field_count(line: &str) -> usize {
	let mut fields = 1;
	let mut quoted = false;
	for c in line.chars() {
		match c {
			'"' => quoted = !quoted,
			',' if !quoted => fields += 1,
			_ => {},
		}
	}
	fields
}

#[cfg(test)]
mod tests {
	use super::*;

	/// A zip whose first local header names `name` (stored, no data descriptor).
	fn zip_with_entry(name: &[u8]) -> alloc::vec::Vec<u8> {
		let mut bytes = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
		bytes.extend_from_slice(&2u32.to_le_bytes()); // compressed size
		bytes.extend_from_slice(&2u32.to_le_bytes()); // uncompressed size
		bytes.extend_from_slice(&(name.len() as u16).to_le_bytes());
		bytes.extend_from_slice(&0u16.to_le_bytes());
		bytes.extend_from_slice(name);
		bytes.extend_from_slice(b"{}");
		bytes
	}

	#[test]
	fn detects_each_binary_format_from_its_magic_bytes() {
		let mut bmp = b"BM".to_vec();
		bmp.extend_from_slice(&30u32.to_le_bytes());
		bmp.resize(30, 0);
		let cases: [(&[u8], Format); 11] = [
			(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Format::Png),
			(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", Format::Jpeg),
			(b"RIFF\x10\0\0\0WEBPVP8 ", Format::Webp),
			(b"RIFF\x24\0\0\0WAVEfmt ", Format::Wav),
			(b"II*\0\x08\0\0\0", Format::Tiff),
			(b"MM\0*\0\0\0\x08", Format::Tiff),
			(&bmp, Format::Bmp),
			(b"%PDF-1.7\n%", Format::Pdf),
			(b"fLaC\0\0\0\x22", Format::Flac),
			(b"ID3\x04\0\0\0\0\0\0", Format::Mp3),
			(&[0xFF, 0xFB, 0x90, 0x64, 0x00], Format::Mp3),
		];
		for (bytes, expected) in cases {
			assert_eq!(detect(bytes), Some(expected), "{expected:?}");
		}
		assert_eq!(detect(&zip_with_entry(b"word/document.xml")), Some(Format::Docx));
	}

	#[test]
	fn detects_text_structure() {
		assert_eq!(detect(b"# A title\n\nSome prose."), Some(Format::Txt));
		assert_eq!(detect(b"{\"text\": \"a\"}\n{\"text\": \"b\"}\n"), Some(Format::Jsonl));
		assert_eq!(detect(b"name,age\nada,36\n\"lovelace, a\",37\n"), Some(Format::Csv));
		// Rows of unequal width are prose, not CSV.
		assert_eq!(detect(b"a,b\nc\n"), Some(Format::Txt));
		assert_eq!(detect("naïve café ☕".as_bytes()), Some(Format::Txt));
	}

	#[test]
	fn says_which_line_keeps_text_from_being_jsonl_or_csv() {
		let broken = b"{\"text\": \"a\"}\n{\"text\": \"b\"\n{\"text\": \"c\"}\n";
		assert_eq!(detect(broken), Some(Format::Txt));
		let why = why_not(broken, Format::Jsonl).expect("line 2 is named");
		assert!(why.starts_with("line 2 is not a JSON object"), "{why}");
		assert_eq!(why_not(b"{\"a\": 1}\n\n{\"b\": 2}\n", Format::Jsonl), None);
		assert_eq!(
			why_not(b"a,b\n1,2\n3\n", Format::Csv).as_deref(),
			Some("line 3 has 1 fields; the first line has 2")
		);
		assert!(why_not(b"a,b\n", Format::Csv)
			.expect("a lone header")
			.contains("at least one row"));
		assert_eq!(why_not(b"a,b\n1,2\n", Format::Csv), None);
		assert_eq!(why_not(b"prose", Format::Png), None);
	}

	#[test]
	fn refuses_what_it_cannot_vouch_for() {
		// Not UTF-8, no magic.
		assert_eq!(detect(&[0x00, 0xff, 0x13, 0x37]), None);
		// Text with NUL bytes is binary in disguise.
		assert_eq!(detect(b"abc\0def"), None);
		assert_eq!(detect(b""), None);
		// A zip that is not a Word document.
		assert_eq!(detect(&zip_with_entry(b"xl/workbook.xml")), None);
		// "BM" that is just text.
		assert_eq!(detect(b"BMW drivers wave"), Some(Format::Txt));
		// A truncated RIFF.
		assert_eq!(detect(b"RIFF\0\0"), None);
	}

	#[test]
	fn every_format_has_one_kind_and_a_distinct_bit() {
		let mut seen = 0u16;
		for format in Format::ALL {
			assert_eq!(seen & format.bit(), 0);
			seen |= format.bit();
		}
		assert_eq!(Format::of_kind(DataKind::Text).count(), 5);
		assert_eq!(Format::of_kind(DataKind::Image).count(), 5);
		assert_eq!(Format::of_kind(DataKind::Audio).count(), 3);
	}
}
