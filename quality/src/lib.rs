//! # Provenant quality checks
//!
//! What a validator's worker (`provenant validator auto`) checks before it votes on a
//! contribution, as pure functions over the file's bytes:
//!
//! - **Decoding.** Text must be UTF-8 and not empty; JSON lines must be one JSON object per
//!   line; CSV rows must all have the header's number of fields. Images must decode
//!   (PNG, JPEG, WebP, TIFF, BMP) and end where their own markers say; audio (WAV, MP3, FLAC)
//!   must decode to the length its header declares, and an MP3 with no length marker must not
//!   end inside a frame. PDF and DOCX must not be truncated.
//! - **Near-duplicates.** Text is compared by MinHash over word 3-shingles ([`minhash`]); images
//!   by a DCT perceptual hash ([`phash`]). Exact copies never reach a vote: the chain refuses
//!   a file whose hash it already holds.
//!
//! A failed check names a public reason code and says what was wrong, so the contributor
//! learns why.

pub mod index;
pub mod minhash;
pub mod phash;
pub mod samples;

use pallet_datanets::Format;
use pallet_validation::{Ballot, Reason};

/// Text at least this similar (estimated Jaccard over word 3-shingles) is a near-duplicate.
pub const TEXT_SIMILARITY_THRESHOLD: f64 = 0.8;
/// Images whose perceptual hashes differ in at most this many of 64 bits are near-duplicates.
pub const IMAGE_HAMMING_THRESHOLD: u32 = 8;

/// Why a file fails, and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
	/// The public reason code the vote carries.
	pub reason: Reason,
	/// For the worker's log: the line, the byte, the decoder's message.
	pub detail: String,
}

impl Finding {
	fn new(reason: Reason, detail: impl Into<String>) -> Self {
		Self { reason, detail: detail.into() }
	}
}

/// What a file is compared by for near-duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fingerprint {
	/// Text: a MinHash signature (boxed: it is a kilobyte, the other variants a word).
	Text(Box<minhash::Signature>),
	/// An image: a 64-bit perceptual hash.
	Image(u64),
	/// Not compared (audio, PDF, DOCX).
	None,
}

/// Checks that `bytes` really are a well-formed `format` file; returns what to compare it by.
pub fn inspect(format: Format, bytes: &[u8]) -> Result<Fingerprint, Finding> {
	match format {
		Format::Txt | Format::Jsonl | Format::Csv => {
			let text = std::str::from_utf8(bytes).map_err(|e| {
				Finding::new(
					Reason::Corrupt,
					format!("not valid UTF-8 at byte {}", e.valid_up_to()),
				)
			})?;
			if text.trim().is_empty() {
				return Err(Finding::new(Reason::LowQuality, "the file has no text"));
			}
			match format {
				Format::Jsonl => check_jsonl(text)?,
				Format::Csv => check_csv(text)?,
				_ => {},
			}
			Ok(Fingerprint::Text(Box::new(minhash::signature(text))))
		},
		Format::Png | Format::Jpeg | Format::Webp | Format::Tiff | Format::Bmp => {
			check_image_complete(format, bytes)?;
			let image = image::load_from_memory(bytes).map_err(|e| {
				Finding::new(Reason::Corrupt, format!("the image does not decode: {e}"))
			})?;
			Ok(Fingerprint::Image(phash::perceptual_hash(&image)))
		},
		Format::Wav | Format::Mp3 | Format::Flac => {
			if format == Format::Mp3 && mp3_last_frame_is_cut(bytes) {
				return Err(Finding::new(
					Reason::Corrupt,
					"the MP3 is truncated: its last frame is cut short",
				));
			}
			check_audio(format, bytes)?;
			Ok(Fingerprint::None)
		},
		Format::Pdf => {
			let tail = &bytes[bytes.len().saturating_sub(1024)..];
			if !tail.windows(5).any(|w| w == b"%%EOF") {
				return Err(Finding::new(Reason::Corrupt, "the PDF is truncated (no %%EOF)"));
			}
			Ok(Fingerprint::None)
		},
		Format::Docx => {
			let tail = &bytes[bytes.len().saturating_sub(66_000)..];
			if !tail.windows(4).any(|w| w == b"PK\x05\x06") {
				return Err(Finding::new(Reason::Corrupt, "the DOCX archive is truncated"));
			}
			Ok(Fingerprint::None)
		},
	}
}

/// Lenient decoders fill a truncated image with grey or stop at the last whole row; the file's
/// own length markers say whether it is whole.
fn check_image_complete(format: Format, bytes: &[u8]) -> Result<(), Finding> {
	let le_u32_at = |at: usize| {
		bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")))
	};
	let truncated = match format {
		// The IEND chunk closes every PNG (some writers add a little after it).
		Format::Png => !bytes[bytes.len().saturating_sub(64)..]
			.windows(12)
			.any(|w| w == [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]),
		// The RIFF header's size covers the rest of the file.
		Format::Webp => le_u32_at(4).is_none_or(|size| size as usize + 8 > bytes.len()),
		// The end-of-image marker, allowing a little padding after it.
		Format::Jpeg => {
			!bytes[bytes.len().saturating_sub(16)..].windows(2).any(|w| w == [0xff, 0xd9])
		},
		// The header's file size.
		Format::Bmp => le_u32_at(2).is_none_or(|size| size as usize > bytes.len()),
		_ => false,
	};
	if truncated {
		return Err(Finding::new(Reason::Corrupt, "the image is truncated"));
	}
	Ok(())
}

fn check_jsonl(text: &str) -> Result<(), Finding> {
	let mut records = 0;
	for (index, line) in text.lines().enumerate() {
		if line.trim().is_empty() {
			continue;
		}
		match serde_json::from_str::<serde_json::Value>(line) {
			Ok(serde_json::Value::Object(_)) => records += 1,
			Ok(_) => {
				return Err(Finding::new(
					Reason::BadFormat,
					format!("line {} is JSON but not an object", index + 1),
				))
			},
			Err(e) => {
				return Err(Finding::new(
					Reason::BadFormat,
					format!("line {} is not JSON: {e}", index + 1),
				))
			},
		}
	}
	if records == 0 {
		return Err(Finding::new(Reason::LowQuality, "no JSON records"));
	}
	Ok(())
}

/// The fields of one CSV row, honouring double quotes (RFC 4180).
fn csv_fields(row: &str) -> Result<usize, &'static str> {
	let (mut fields, mut quoted, mut chars) = (1, false, row.chars().peekable());
	while let Some(c) = chars.next() {
		match (c, quoted) {
			('"', true) if chars.peek() == Some(&'"') => {
				chars.next();
			},
			('"', _) => quoted = !quoted,
			(',', false) => fields += 1,
			_ => {},
		}
	}
	if quoted {
		return Err("an unclosed quote");
	}
	Ok(fields)
}

fn check_csv(text: &str) -> Result<(), Finding> {
	let mut rows = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
	let (_, header) = rows.next().expect("non-empty text has a line");
	let width = csv_fields(header)
		.map_err(|e| Finding::new(Reason::BadFormat, format!("the header has {e}")))?;
	for (index, row) in rows {
		let fields = csv_fields(row)
			.map_err(|e| Finding::new(Reason::BadFormat, format!("row {} has {e}", index + 1)))?;
		if fields != width {
			return Err(Finding::new(
				Reason::BadFormat,
				format!("row {} has {fields} fields; the header has {width}", index + 1),
			));
		}
	}
	Ok(())
}

fn check_audio(format: Format, bytes: &[u8]) -> Result<(), Finding> {
	use symphonia::core::{
		codecs::DecoderOptions, errors::Error, formats::FormatOptions, io::MediaSourceStream,
		meta::MetadataOptions, probe::Hint,
	};
	let corrupt =
		|e: Error| Finding::new(Reason::Corrupt, format!("the audio does not decode: {e}"));
	let source =
		MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes.to_vec())), Default::default());
	let mut hint = Hint::new();
	hint.with_extension(format.name());
	let probed = symphonia::default::get_probe()
		.format(&hint, source, &FormatOptions::default(), &MetadataOptions::default())
		.map_err(corrupt)?;
	let mut reader = probed.format;
	let track = reader
		.default_track()
		.ok_or_else(|| Finding::new(Reason::Corrupt, "the audio has no track"))?;
	let track_id = track.id;
	// What the header declares: WAV's data chunk size, FLAC's STREAMINFO total, MP3's
	// Xing/Info frame count. Decoding stops quietly where the bytes end, so a file cut at a
	// frame boundary is only caught by holding the decoded length against this.
	let declared = track.codec_params.n_frames.filter(|&n| n > 0);
	let mut decoder = symphonia::default::get_codecs()
		.make(&track.codec_params, &DecoderOptions { verify: true })
		.map_err(corrupt)?;
	let mut frames = 0u64;
	loop {
		match reader.next_packet() {
			Ok(packet) if packet.track_id() == track_id => {
				frames += decoder.decode(&packet).map_err(corrupt)?.frames() as u64;
			},
			Ok(_) => {},
			Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
			Err(e) => return Err(corrupt(e)),
		}
	}
	if let Some(declared) = declared {
		// An MP3's count may include the Info frame itself and the encoder's padding frame.
		let slack = if format == Format::Mp3 { 2 * MP3_FRAME_SAMPLES } else { 0 };
		if frames + slack < declared {
			return Err(Finding::new(
				Reason::Corrupt,
				format!(
					"the audio is truncated: {frames} of the {declared} samples its header \
					 declares decode"
				),
			));
		}
	}
	if frames == 0 {
		return Err(Finding::new(Reason::LowQuality, "the audio has no samples"));
	}
	Ok(())
}

/// Whether an MPEG audio stream's last frame runs past the end of the bytes. Frames are walked
/// by their headers' lengths from the first one after an ID3v2 tag, up to an ID3v1 tag; a walk
/// that meets something that is not a frame header (free-format bit rates, other tags) stops
/// and says nothing. An MP3 with no Xing/Info frame has no other length marker, so a cut inside
/// a frame is all that can be seen of its truncation.
fn mp3_last_frame_is_cut(bytes: &[u8]) -> bool {
	let mut at = match bytes {
		[b'I', b'D', b'3', _, _, flags, size @ ..] if size.len() >= 4 => {
			let syncsafe = size[..4].iter().fold(0usize, |n, b| (n << 7) | usize::from(b & 0x7f));
			10 + syncsafe + if flags & 0x10 != 0 { 10 } else { 0 }
		},
		_ => 0,
	};
	let end = if bytes.len() >= 128 && bytes[bytes.len() - 128..].starts_with(b"TAG") {
		bytes.len() - 128
	} else {
		bytes.len()
	};
	while at < end {
		let Some(length) = bytes.get(at..at + 4).and_then(mpeg_frame_length) else { return false };
		if at + length > end {
			return true;
		}
		at += length;
	}
	false
}

/// The length in bytes of the MPEG audio frame whose header is `header`, if it is one.
fn mpeg_frame_length(header: &[u8]) -> Option<usize> {
	if header[0] != 0xff || header[1] & 0xe0 != 0xe0 {
		return None;
	}
	// Version: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5. Layer: 3 = I, 2 = II, 1 = III.
	let (version, layer) = ((header[1] >> 3) & 3, (header[1] >> 1) & 3);
	let (bitrate_index, rate_index) =
		(usize::from(header[2] >> 4), usize::from((header[2] >> 2) & 3));
	let padding = usize::from((header[2] >> 1) & 1);
	if version == 1 || layer == 0 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
		return None;
	}
	const KBPS: [[usize; 15]; 5] = [
		[0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448], // MPEG-1 I
		[0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],    // MPEG-1 II
		[0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],     // MPEG-1 III
		[0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],    // MPEG-2 I
		[0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],         // MPEG-2 II, III
	];
	let mpeg1 = version == 3;
	let table = match (mpeg1, layer) {
		(true, 3) => 0,
		(true, 2) => 1,
		(true, _) => 2,
		(false, 3) => 3,
		(false, _) => 4,
	};
	let bitrate = KBPS[table][bitrate_index] * 1000;
	let rate = [44_100, 48_000, 32_000][rate_index]
		/ if mpeg1 {
			1
		} else if version == 2 {
			2
		} else {
			4
		};
	Some(match layer {
		3 => (12 * bitrate / rate + padding) * 4,
		1 if !mpeg1 => 72 * bitrate / rate + padding,
		_ => 144 * bitrate / rate + padding,
	})
}

/// Samples per channel in one MPEG-1 Layer III frame.
const MP3_FRAME_SAMPLES: u64 = 1152;

/// The files already in a datanet, by contribution, to compare new ones against.
#[derive(Debug, Default)]
pub struct Corpus {
	entries: Vec<(u64, Fingerprint)>,
}

impl Corpus {
	/// Adds contribution `id`'s fingerprint.
	pub fn insert(&mut self, id: u64, fingerprint: Fingerprint) {
		if fingerprint != Fingerprint::None {
			self.entries.push((id, fingerprint));
		}
	}

	/// The earlier contribution `fingerprint` nearly duplicates, with a description of how
	/// close it is.
	pub fn near_duplicate_of(&self, fingerprint: &Fingerprint) -> Option<(u64, String)> {
		self.entries.iter().find_map(|(id, known)| match (fingerprint, known) {
			(Fingerprint::Text(new), Fingerprint::Text(old)) => {
				let similarity = minhash::similarity(new, old);
				(similarity >= TEXT_SIMILARITY_THRESHOLD)
					.then(|| (*id, format!("{:.0}% similar text", similarity * 100.0)))
			},
			(Fingerprint::Image(new), Fingerprint::Image(old)) => {
				let distance = (new ^ old).count_ones();
				(distance <= IMAGE_HAMMING_THRESHOLD)
					.then(|| (*id, format!("perceptual hashes {distance} bits apart")))
			},
			_ => None,
		})
	}
}

/// The ballot for a file, given the earlier files of its datanet, and why.
pub fn judge(format: Format, bytes: &[u8], corpus: &Corpus) -> (Ballot, Fingerprint, String) {
	judge_with(format, bytes, |fingerprint| corpus.near_duplicate_of(fingerprint))
}

/// [`judge`], with the earlier files searched by `near_duplicate_of` (an [`index::Index`]).
pub fn judge_with(
	format: Format,
	bytes: &[u8],
	near_duplicate_of: impl FnOnce(&Fingerprint) -> Option<(u64, String)>,
) -> (Ballot, Fingerprint, String) {
	match inspect(format, bytes) {
		Err(finding) => (Ballot::Reject(finding.reason), Fingerprint::None, finding.detail),
		Ok(fingerprint) => match near_duplicate_of(&fingerprint) {
			Some((id, how)) => (
				Ballot::Reject(Reason::NearDuplicate),
				fingerprint,
				format!("near-duplicate of #{id}: {how}"),
			),
			None => (Ballot::Accept, fingerprint, "passes every check".into()),
		},
	}
}

#[cfg(test)]
mod tests;
