//! Each check against files built here: good ones pass, and each kind of bad one is refused
//! with the reason a contributor would expect.

use super::*;
use image::{ImageFormat, Rgb, RgbImage};

const PROSE: &str = "Provenant pays the people whose data trains a model. Each datanet publishes \
	its rules, validators stake on quality checks, and contributors are ranked by the share of \
	their files that are accepted rather than by how many they send. A rejection fades with \
	time, so trying something new never ruins a good record.";

fn reason(format: Format, bytes: &[u8]) -> Reason {
	inspect(format, bytes).expect_err("the check refuses it").reason
}

/// A 64×64 picture with some structure: diagonal bands and a square.
fn picture(shift: u8) -> RgbImage {
	RgbImage::from_fn(64, 64, |x, y| {
		let band = (((x + y) / 8) % 2 * 180) as u8;
		let square = if (16..40).contains(&x) && (20..44).contains(&y) { 60 } else { 0 };
		Rgb([band.saturating_add(shift), square, band / 2])
	})
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
	let mut bytes = std::io::Cursor::new(Vec::new());
	image.write_to(&mut bytes, format).unwrap();
	bytes.into_inner()
}

/// A WAVE file of 16-bit mono PCM: a 440 Hz tone of `samples` samples.
fn wav(samples: u32) -> Vec<u8> {
	let data_len = samples * 2;
	let mut bytes = Vec::new();
	bytes.extend_from_slice(b"RIFF");
	bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
	bytes.extend_from_slice(b"WAVEfmt ");
	bytes.extend_from_slice(&16u32.to_le_bytes());
	bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
	bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
	bytes.extend_from_slice(&8000u32.to_le_bytes());
	bytes.extend_from_slice(&16000u32.to_le_bytes());
	bytes.extend_from_slice(&2u16.to_le_bytes());
	bytes.extend_from_slice(&16u16.to_le_bytes());
	bytes.extend_from_slice(b"data");
	bytes.extend_from_slice(&data_len.to_le_bytes());
	for n in 0..samples {
		let sample =
			((n as f32 * 440.0 * 2.0 * std::f32::consts::PI / 8000.0).sin() * 8000.0) as i16;
		bytes.extend_from_slice(&sample.to_le_bytes());
	}
	bytes
}

#[test]
fn good_text_passes_and_bad_text_is_named() {
	assert!(matches!(inspect(Format::Txt, PROSE.as_bytes()), Ok(Fingerprint::Text(_))));
	assert_eq!(reason(Format::Txt, b"caf\xc3"), Reason::Corrupt);
	assert!(inspect(Format::Txt, b"ok\xff").unwrap_err().detail.contains("byte 2"));
	assert_eq!(reason(Format::Txt, b"  \n\t "), Reason::LowQuality);
}

#[test]
fn json_lines_must_be_objects_and_the_line_is_named() {
	assert!(inspect(Format::Jsonl, b"{\"text\":\"a\"}\n\n{\"text\":\"b\"}\n").is_ok());
	let bad = inspect(Format::Jsonl, b"{\"text\":\"a\"}\n{\"text\": oops}\n").unwrap_err();
	assert_eq!(bad.reason, Reason::BadFormat);
	assert!(bad.detail.contains("line 2"), "{}", bad.detail);
	assert!(inspect(Format::Jsonl, b"[1, 2]\n").unwrap_err().detail.contains("not an object"));
}

#[test]
fn csv_rows_must_match_the_header() {
	assert!(
		inspect(Format::Csv, b"name,quote\nada,\"hello, world\"\nbob,\"say \"\"hi\"\"\"\n").is_ok()
	);
	let bad = inspect(Format::Csv, b"a,b,c\n1,2,3\n4,5\n").unwrap_err();
	assert_eq!(bad.reason, Reason::BadFormat);
	assert!(bad.detail.contains("row 3 has 2 fields; the header has 3"), "{}", bad.detail);
	assert_eq!(reason(Format::Csv, b"a,b\n1,\"2\n"), Reason::BadFormat);
}

#[test]
fn images_must_decode() {
	for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Bmp, ImageFormat::Tiff] {
		let bytes = encode(&picture(0), format);
		let ours = match format {
			ImageFormat::Png => Format::Png,
			ImageFormat::Jpeg => Format::Jpeg,
			ImageFormat::Bmp => Format::Bmp,
			_ => Format::Tiff,
		};
		assert!(matches!(inspect(ours, &bytes), Ok(Fingerprint::Image(_))), "{format:?}");
		let truncated = &bytes[..bytes.len() / 2];
		assert_eq!(reason(ours, truncated), Reason::Corrupt, "{format:?}");
	}
}

#[test]
fn audio_must_decode() {
	assert_eq!(inspect(Format::Wav, &wav(8000)), Ok(Fingerprint::None));
	let mut damaged = wav(8000);
	damaged.truncate(30);
	assert_eq!(reason(Format::Wav, &damaged), Reason::Corrupt);
	assert_eq!(reason(Format::Wav, &wav(0)), Reason::LowQuality);
}

#[test]
fn documents_must_not_be_truncated() {
	assert!(inspect(Format::Pdf, b"%PDF-1.4\n1 0 obj\nendobj\n%%EOF\n").is_ok());
	assert_eq!(reason(Format::Pdf, b"%PDF-1.4\n1 0 obj\n"), Reason::Corrupt);
}

#[test]
fn near_duplicate_text_is_caught_and_different_text_is_not() {
	let mut corpus = Corpus::default();
	corpus.insert(7, inspect(Format::Txt, PROSE.as_bytes()).unwrap());
	// Light edits: case, punctuation and one word changed.
	let edited = PROSE.to_uppercase().replace("never ruins", "never spoils").replace(',', ";");
	let (ballot, _, detail) = judge(Format::Txt, edited.as_bytes(), &corpus);
	assert_eq!(ballot, Ballot::Reject(Reason::NearDuplicate));
	assert!(detail.starts_with("near-duplicate of #7"), "{detail}");

	let other = "Gradient descent walks downhill on the loss surface, one small step per batch, \
		until the validation loss stops improving and the learning rate has decayed.";
	assert_eq!(judge(Format::Txt, other.as_bytes(), &corpus).0, Ballot::Accept);
}

#[test]
fn near_duplicate_images_are_caught_and_different_images_are_not() {
	let mut corpus = Corpus::default();
	corpus.insert(3, inspect(Format::Png, &encode(&picture(0), ImageFormat::Png)).unwrap());
	// The same picture, brightened and saved as JPEG: different bytes, same content.
	let copy = encode(&picture(20), ImageFormat::Jpeg);
	let (ballot, _, detail) = judge(Format::Jpeg, &copy, &corpus);
	assert_eq!(ballot, Ballot::Reject(Reason::NearDuplicate), "{detail}");
	// A different picture: vertical stripes.
	let stripes =
		RgbImage::from_fn(
			64,
			64,
			|x, _| if x % 16 < 8 { Rgb([250, 250, 250]) } else { Rgb([0, 0, 0]) },
		);
	let (ballot, _, detail) = judge(Format::Png, &encode(&stripes, ImageFormat::Png), &corpus);
	assert_eq!(ballot, Ballot::Accept, "{detail}");
}

#[test]
fn minhash_estimates_jaccard() {
	let a = minhash::signature(PROSE);
	assert_eq!(minhash::similarity(&a, &a), 1.0);
	let unrelated =
		minhash::signature("entirely unrelated words about weather in the mountains today");
	assert!(minhash::similarity(&a, &unrelated) < 0.1);
}
