//! Near-duplicate search whose cost does not grow with the datanet, kept on disk.
//!
//! - **Text**: MinHash LSH (Broder 1997; Leskovec, Rajaraman and Ullman, *Mining of Massive
//!   Datasets*, §3.4). The [`minhash::SLOTS`] slots are cut into [`BANDS`] bands of
//!   [`ROWS`]; two texts become candidates when one band agrees entirely. Texts of similarity
//!   `s` meet in some band with probability `1 − (1 − s^ROWS)^BANDS`: above 0.9999 at the
//!   threshold 0.8, and 0.87 at 0.5, so candidates are few and near-duplicates are not missed.
//!   Each candidate is then compared on its whole signature, as the linear scan does.
//! - **Images**: multi-index hashing (Norouzi, Punjani and Fleet 2012). The 64-bit hash is cut
//!   into [`CHUNKS`] chunks; two hashes at most [`IMAGE_HAMMING_THRESHOLD`] bits apart agree
//!   exactly on at least one chunk (pigeonhole), so looking up each chunk finds every one.
//!
//! Among the matches, the earliest contribution is reported, as the linear scan of
//! [`Corpus`](crate::Corpus) reports it. Every fingerprint is appended to a file as it is
//! inserted; [`Index::open`] reads them back, so a restarted worker fetches nothing again.

use std::{
	collections::{HashMap, HashSet},
	fs::{File, OpenOptions},
	io::{BufReader, Read, Write},
	path::Path,
};

use crate::{minhash, Fingerprint, IMAGE_HAMMING_THRESHOLD, TEXT_SIMILARITY_THRESHOLD};

/// LSH bands over a text signature.
pub const BANDS: usize = 32;
/// Signature slots per band.
pub const ROWS: usize = minhash::SLOTS / BANDS;
/// Chunks of an image hash: one more than the bits two near-duplicates may differ in.
pub const CHUNKS: usize = IMAGE_HAMMING_THRESHOLD as usize + 1;

const MAGIC: &[u8; 8] = b"PRVNDX1\n";
const TEXT: u8 = 1;
const IMAGE: u8 = 2;
const NONE: u8 = 0;

/// Every fingerprint seen, by contribution, with the lookup tables over them.
pub struct Index {
	texts: Vec<(u64, Box<minhash::Signature>)>,
	/// For each band, the texts (positions in `texts`) by the band's hash.
	bands: Vec<HashMap<u64, Vec<u32>>>,
	images: Vec<(u64, u64)>,
	/// For each chunk, the images (positions in `images`) by the chunk's bits.
	chunks: Vec<HashMap<u64, Vec<u32>>>,
	known: HashSet<u64>,
	file: Option<File>,
}

/// splitmix64's finaliser, to hash a band's slots together.
fn mix(mut x: u64) -> u64 {
	x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
	x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
	x ^ (x >> 31)
}

fn band_keys(signature: &minhash::Signature) -> impl Iterator<Item = Option<u64>> + '_ {
	signature.chunks(ROWS).map(|band| {
		// A band of empty slots (a text with no shingles there) says nothing.
		(!band.iter().all(|slot| *slot == u64::MAX))
			.then(|| band.iter().fold(0x243f_6a88_85a3_08d3, |hash, slot| mix(hash ^ slot)))
	})
}

/// The bits of chunk `c` of an image hash: chunks of 7 bits, the last of 8.
fn chunk(hash: u64, c: usize) -> u64 {
	let width = 64 / CHUNKS;
	let start = c * width;
	let bits = if c == CHUNKS - 1 { 64 - start } else { width };
	(hash >> start) & ((1u64 << bits) - 1)
}

impl Default for Index {
	fn default() -> Self {
		Self::new()
	}
}

impl Index {
	/// An index kept only in memory.
	pub fn new() -> Self {
		Self {
			texts: Vec::new(),
			bands: vec![HashMap::new(); BANDS],
			images: Vec::new(),
			chunks: vec![HashMap::new(); CHUNKS],
			known: HashSet::new(),
			file: None,
		}
	}

	/// The index stored at `path`, created if there is none. A record cut short by a crash is
	/// dropped from the file.
	pub fn open(path: &Path) -> std::io::Result<Self> {
		if let Some(dir) = path.parent() {
			std::fs::create_dir_all(dir)?;
		}
		let mut index = Self::new();
		let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
		let mut bytes = Vec::new();
		BufReader::new(&file).read_to_end(&mut bytes)?;
		if bytes.is_empty() {
			file.write_all(MAGIC)?;
		} else if !bytes.starts_with(MAGIC) {
			return Err(std::io::Error::other(format!(
				"{} is not a near-duplicate index",
				path.display()
			)));
		}
		let mut at = MAGIC.len().min(bytes.len());
		while let Some((id, fingerprint, next)) = decode(&bytes, at) {
			index.remember(id, fingerprint);
			at = next;
		}
		if at < bytes.len() {
			file.set_len(at as u64)?;
		}
		index.file = Some(file);
		Ok(index)
	}

	/// Whether contribution `id` is in the index.
	pub fn contains(&self, id: u64) -> bool {
		self.known.contains(&id)
	}

	/// Adds contribution `id`'s fingerprint, and writes it to the file.
	pub fn insert(&mut self, id: u64, fingerprint: Fingerprint) -> std::io::Result<()> {
		if self.known.contains(&id) {
			return Ok(());
		}
		if let Some(file) = &mut self.file {
			file.write_all(&encode(id, &fingerprint))?;
		}
		self.remember(id, fingerprint);
		Ok(())
	}

	fn remember(&mut self, id: u64, fingerprint: Fingerprint) {
		self.known.insert(id);
		match fingerprint {
			Fingerprint::Text(signature) => {
				let position = self.texts.len() as u32;
				for (band, key) in band_keys(&signature).enumerate() {
					if let Some(key) = key {
						self.bands[band].entry(key).or_default().push(position);
					}
				}
				self.texts.push((id, signature));
			},
			Fingerprint::Image(hash) => {
				let position = self.images.len() as u32;
				for c in 0..CHUNKS {
					self.chunks[c].entry(chunk(hash, c)).or_default().push(position);
				}
				self.images.push((id, hash));
			},
			Fingerprint::None => {},
		}
	}

	/// The earliest contribution among those `admit` lets through that `fingerprint` nearly
	/// duplicates, with how close it is: what [`Corpus::near_duplicate_of`] finds over the same
	/// files, in about constant time.
	///
	/// [`Corpus::near_duplicate_of`]: crate::Corpus::near_duplicate_of
	pub fn near_duplicate_of(
		&self,
		fingerprint: &Fingerprint,
		admit: impl Fn(u64) -> bool,
	) -> Option<(u64, String)> {
		let mut best: Option<(u64, String)> = None;
		let mut consider = |id: u64, how: String| {
			if admit(id) && best.as_ref().is_none_or(|(earliest, _)| id < *earliest) {
				best = Some((id, how));
			}
		};
		match fingerprint {
			Fingerprint::Text(signature) => {
				let mut seen = HashSet::new();
				for (band, key) in band_keys(signature).enumerate() {
					let Some(bucket) = key.and_then(|key| self.bands[band].get(&key)) else {
						continue;
					};
					for &position in bucket {
						if !seen.insert(position) {
							continue;
						}
						let (id, known) = &self.texts[position as usize];
						let similarity = minhash::similarity(signature, known);
						if similarity >= TEXT_SIMILARITY_THRESHOLD {
							consider(*id, format!("{:.0}% similar text", similarity * 100.0));
						}
					}
				}
			},
			Fingerprint::Image(hash) => {
				let mut seen = HashSet::new();
				for c in 0..CHUNKS {
					let Some(bucket) = self.chunks[c].get(&chunk(*hash, c)) else { continue };
					for &position in bucket {
						if !seen.insert(position) {
							continue;
						}
						let (id, known) = self.images[position as usize];
						let distance = (hash ^ known).count_ones();
						if distance <= IMAGE_HAMMING_THRESHOLD {
							consider(id, format!("perceptual hashes {distance} bits apart"));
						}
					}
				}
			},
			Fingerprint::None => {},
		}
		best
	}
}

fn encode(id: u64, fingerprint: &Fingerprint) -> Vec<u8> {
	let mut record = Vec::with_capacity(9 + 8 * minhash::SLOTS);
	let (kind, payload): (u8, Vec<u64>) = match fingerprint {
		Fingerprint::Text(signature) => (TEXT, signature.to_vec()),
		Fingerprint::Image(hash) => (IMAGE, vec![*hash]),
		Fingerprint::None => (NONE, Vec::new()),
	};
	record.push(kind);
	record.extend_from_slice(&id.to_le_bytes());
	for word in payload {
		record.extend_from_slice(&word.to_le_bytes());
	}
	record
}

/// The record at `at`, and where the next begins; `None` at the end or at a partial record.
fn decode(bytes: &[u8], at: usize) -> Option<(u64, Fingerprint, usize)> {
	let kind = *bytes.get(at)?;
	let word = |n: usize| {
		let start = at + 1 + 8 * n;
		bytes.get(start..start + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
	};
	let id = word(0)?;
	match kind {
		TEXT => {
			let mut signature = [0u64; minhash::SLOTS];
			for (slot, value) in signature.iter_mut().enumerate() {
				*value = word(1 + slot)?;
			}
			Some((id, Fingerprint::Text(Box::new(signature)), at + 9 + 8 * minhash::SLOTS))
		},
		IMAGE => Some((id, Fingerprint::Image(word(1)?), at + 17)),
		NONE => Some((id, Fingerprint::None, at + 9)),
		_ => None,
	}
}
