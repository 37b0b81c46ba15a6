//! Each check against files built here: good ones pass, and each kind of bad one is refused
//! with the reason a contributor would expect.

use super::{samples::*, *};
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
fn images_must_decode_and_truncated_ones_are_corrupt() {
	for (format, ours) in [
		(ImageFormat::Png, Format::Png),
		(ImageFormat::Jpeg, Format::Jpeg),
		(ImageFormat::WebP, Format::Webp),
		(ImageFormat::Bmp, Format::Bmp),
		(ImageFormat::Tiff, Format::Tiff),
	] {
		let bytes = encode(&picture(0), format);
		assert!(matches!(inspect(ours, &bytes), Ok(Fingerprint::Image(_))), "{format:?}");
		// Cut early, in the middle, and by one byte: a lenient decoder still shows most of
		// the picture, but the file is not whole.
		for kept in [bytes.len() / 4, bytes.len() / 2, bytes.len() - 1] {
			let found = inspect(ours, &bytes[..kept]).expect_err("a truncated image is refused");
			assert_eq!(
				found.reason,
				Reason::Corrupt,
				"{format:?} cut to {kept} of {}",
				bytes.len()
			);
		}
	}
}

#[test]
fn audio_must_decode() {
	assert_eq!(inspect(Format::Wav, &wav(8000)), Ok(Fingerprint::None));
	let mut damaged = wav(8000);
	damaged.truncate(30);
	assert_eq!(reason(Format::Wav, &damaged), Reason::Corrupt);
	assert_eq!(reason(Format::Wav, &wav(0)), Reason::LowQuality);
	assert_eq!(inspect(Format::Flac, &flac(8000, 1000)), Ok(Fingerprint::None));
	assert_eq!(inspect(Format::Mp3, &mp3(40)), Ok(Fingerprint::None));
	assert_eq!(inspect(Format::Mp3, &mp3_without_info(40)), Ok(Fingerprint::None));
}

/// Files cut so that every remaining frame is whole still decode; the header's declared length
/// is what shows them truncated. Cuts inside a frame are caught too.
#[test]
fn truncated_audio_is_corrupt_whether_or_not_its_frames_decode() {
	let cases = [
		// Half of the data chunk, on a sample boundary.
		(Format::Wav, wav(8000), 44 + 8000),
		(Format::Wav, wav(8000), 44 + 8000 + 1),
		// Two thirds of the frames, on a frame boundary, and then inside the next frame.
		(Format::Flac, flac(6000, 1000), 42 + 4 * (8 + 1 + 2000 + 2)),
		(Format::Flac, flac(6000, 1000), 42 + 4 * (8 + 1 + 2000 + 2) + 700),
		// Half of the frames, on a frame boundary, and then inside the next frame.
		(Format::Mp3, mp3(40), 417 * 21),
		(Format::Mp3, mp3(40), 417 * 21 + 200),
		// With no Info frame, only a cut inside a frame shows.
		(Format::Mp3, mp3_without_info(40), MP3_FRAME * 20 + 200),
	];
	for (format, whole, kept) in cases {
		assert!(inspect(format, &whole).is_ok(), "the whole {format:?} passes");
		let found = inspect(format, &whole[..kept]).expect_err("a truncated file is refused");
		assert_eq!(found.reason, Reason::Corrupt, "{format:?} cut to {kept}: {}", found.detail);
		assert!(found.detail.contains("truncated") || found.detail.contains("decode"), "{found:?}");
	}
	// Decoding alone passes that last MP3: only walking its frames shows the cut.
	let no_info = mp3_without_info(40);
	assert!(check_audio(Format::Mp3, &no_info[..MP3_FRAME * 20 + 200]).is_ok());
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

/// Texts of `words` words drawn from a small vocabulary by `seed`.
fn words(seed: u64, count: usize) -> Vec<String> {
	let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
	(0..count)
		.map(|_| {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			format!("w{}", state % 5000)
		})
		.collect()
}

#[test]
fn the_index_finds_what_the_linear_scan_finds() {
	let mut corpus = Corpus::default();
	let mut index = index::Index::new();
	let mut planted = Vec::new();
	for id in 0..300u64 {
		let mut text = words(id, 60);
		// Every tenth text is an earlier one with a word changed: about 90% similar.
		if id % 10 == 9 {
			text = words(id - 5, 60);
			text[30] = "changed".to_string();
			planted.push(id);
		}
		let fingerprint = Fingerprint::Text(Box::new(minhash::signature(&text.join(" "))));
		let linear = corpus.near_duplicate_of(&fingerprint);
		let indexed = index.near_duplicate_of(&fingerprint, |_| true);
		assert_eq!(indexed, linear, "text {id}");
		assert_eq!(linear.is_some(), planted.contains(&id), "text {id}");
		corpus.insert(id, fingerprint.clone());
		index.insert(id, fingerprint).unwrap();
	}
	let mut hashes = Vec::new();
	for id in 0..300u64 {
		let hash = if id % 10 == 9 {
			// Eight bits flipped, in different chunks: still a near-duplicate.
			hashes[id as usize - 3] ^ 0x0101_0101_0101_0101
		} else {
			words(id, 1)[0].len() as u64 ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
		};
		hashes.push(hash);
		let fingerprint = Fingerprint::Image(hash);
		let expected = corpus.near_duplicate_of(&fingerprint);
		assert_eq!(index.near_duplicate_of(&fingerprint, |_| true), expected, "image {id}");
		if id % 10 == 9 {
			assert!(expected.is_some(), "image {id} is planted");
		}
		corpus.insert(1000 + id, fingerprint.clone());
		index.insert(1000 + id, fingerprint).unwrap();
	}
	// The caller decides which files count: earlier ones, not rejected ones.
	let copy = Fingerprint::Image(hashes[6] ^ 1);
	assert_eq!(index.near_duplicate_of(&copy, |_| true).map(|(id, _)| id), Some(1006));
	assert_eq!(index.near_duplicate_of(&copy, |id| id < 1006).map(|(id, _)| id), None);
}

#[test]
fn the_index_survives_a_restart_and_a_torn_write() {
	let dir = tempfile::tempdir().unwrap();
	let path = dir.path().join("datanet-0.index");
	let text = Fingerprint::Text(Box::new(minhash::signature(PROSE)));
	{
		let mut index = index::Index::open(&path).unwrap();
		index.insert(1, text.clone()).unwrap();
		index.insert(2, Fingerprint::Image(0xdead_beef)).unwrap();
		index.insert(3, Fingerprint::None).unwrap();
	}
	// A crash in the middle of a record leaves part of it.
	use std::io::Write;
	let whole = std::fs::metadata(&path).unwrap().len();
	std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[1, 9, 9]).unwrap();
	let index = index::Index::open(&path).unwrap();
	assert!(index.contains(1) && index.contains(2) && index.contains(3));
	assert_eq!(index.near_duplicate_of(&text, |_| true).map(|(id, _)| id), Some(1));
	assert_eq!(
		index.near_duplicate_of(&Fingerprint::Image(0xdead_beee), |_| true).map(|(id, _)| id),
		Some(2)
	);
	assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "the torn record is dropped");
	std::fs::write(&path, b"not an index").unwrap();
	assert!(index::Index::open(&path).is_err());
}
