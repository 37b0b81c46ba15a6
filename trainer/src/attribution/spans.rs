//! Inference-time span attribution, infini-gram style: the training set's token ids indexed by
//! a suffix array, and for a generated text the maximal spans that appear in it verbatim, each
//! with the sources (contributions) that hold it.
//!
//! Everything is integer work over token ids in a fixed order, so anyone with the training
//! set and the tokenizer rebuilds the same index and finds the same spans and shares.
//!
//! Rules:
//! - A document is one trained run of a source's tokens: a plain text, or an example's
//!   response. Documents are joined with a separator token that no text contains, so no span
//!   crosses two of them.
//! - A span is maximal: it cannot be extended to the right (the longest match from its start)
//!   and is not inside an earlier span. Spans shorter than `min_len` tokens are not reported.
//! - A span held by more than `max_sources` sources, or found more than [`MAX_OCCURRENCES`]
//!   times, is common text: reported, credited to no one.
//! - Each token of the answer inside credited spans gives one unit, split equally among the
//!   credited spans that cover it, and each span's part equally among its sources. Shares are
//!   the units per source over all units given, and add up to one.

use std::{
	collections::BTreeMap,
	io::{Read, Write},
	path::Path,
};

use super::suffix_array::suffix_array;
use crate::{data::TokenStream, Error, Result};

/// Occurrences of a span beyond which it is common text and not traced to sources.
pub const MAX_OCCURRENCES: usize = 4096;

const MAGIC: &[u8; 8] = b"PRVSPAN1";

/// A training set's token ids with their suffix array, and each document's source.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanIndex {
	/// Every document's tokens, each followed by `separator`.
	tokens: Vec<u32>,
	/// The suffix array of `tokens`.
	suffixes: Vec<u32>,
	/// Where each document starts in `tokens`.
	starts: Vec<u32>,
	/// The source of each document.
	sources: Vec<u64>,
	/// The vocabulary's size, which no token reaches: it ends every document.
	separator: u32,
	/// The sha256 of the tokenizer the documents were tokenised with.
	pub tokenizer: [u8; 32],
	/// What the index was built from, as its builder names it (a job's training-set root, or
	/// a digest of the data files).
	pub training_set: [u8; 32],
}

/// A maximal run of an answer's tokens found verbatim in the training set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
	/// The first token of the answer in the span.
	pub start: usize,
	/// One past its last token.
	pub end: usize,
	/// How many times it occurs in the training set.
	pub occurrences: usize,
	/// The sources holding it, ascending; empty for common text.
	pub sources: Vec<u64>,
}

/// An answer's spans and the shares of the sources they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribution {
	/// The answer's length in tokens.
	pub tokens: usize,
	/// Tokens inside at least one credited span.
	pub covered: usize,
	/// The maximal spans, by start.
	pub spans: Vec<Span>,
	/// Each credited source's share, largest first; they add up to one.
	pub shares: Vec<(u64, f64)>,
}

/// The documents of a tokenised source: its runs of trained tokens (a plain text, or each
/// example's response), which is what the model learned to produce.
pub fn trained_runs(stream: &TokenStream) -> Vec<Vec<u32>> {
	let mut runs = Vec::new();
	let mut current = Vec::new();
	for (&id, &trained) in stream.ids.iter().zip(&stream.trained) {
		if trained {
			current.push(id);
		} else if !current.is_empty() {
			runs.push(std::mem::take(&mut current));
		}
	}
	if !current.is_empty() {
		runs.push(current);
	}
	runs
}

impl SpanIndex {
	/// Indexes `documents`, each a source and its token ids below `vocab`, in the order given.
	pub fn build(
		documents: impl IntoIterator<Item = (u64, Vec<u32>)>,
		vocab: u32,
		tokenizer: [u8; 32],
		training_set: [u8; 32],
	) -> Result<Self> {
		let separator = vocab;
		let mut tokens = Vec::new();
		let mut starts = Vec::new();
		let mut sources = Vec::new();
		for (source, document) in documents {
			if let Some(token) = document.iter().find(|&&t| t >= vocab) {
				return Err(Error::Attribution(format!(
					"source {source} holds token {token}, outside the vocabulary of {vocab}"
				)));
			}
			if document.is_empty() {
				continue;
			}
			if tokens.len() + document.len() + 1 >= u32::MAX as usize {
				return Err(Error::Attribution(format!(
					"more than {} tokens are more than one index holds",
					u32::MAX - 1
				)));
			}
			starts.push(tokens.len() as u32);
			sources.push(source);
			tokens.extend_from_slice(&document);
			tokens.push(separator);
		}
		tokens.shrink_to_fit();
		let suffixes = suffix_array(&mut tokens, separator as usize + 1);
		Ok(Self { tokens, suffixes, starts, sources, separator, tokenizer, training_set })
	}

	/// Tokens indexed, separators included.
	pub fn len(&self) -> usize {
		self.tokens.len()
	}

	/// Whether no document was indexed.
	pub fn is_empty(&self) -> bool {
		self.tokens.is_empty()
	}

	/// Documents indexed.
	pub fn documents(&self) -> usize {
		self.starts.len()
	}

	/// The token at `position`, and -1 past the end, as suffixes order them.
	fn at(&self, position: usize) -> i64 {
		self.tokens.get(position).map_or(-1, |&t| t as i64)
	}

	/// The longest prefix of `query` in the training set: its length and the suffix-array
	/// range of its occurrences.
	fn longest_match(&self, query: &[u32]) -> (usize, usize, usize) {
		let (mut low, mut high) = (0, self.suffixes.len());
		let mut len = 0;
		while len < query.len() {
			let c = query[len] as i64;
			let range = &self.suffixes[low..high];
			let first = range.partition_point(|&s| self.at(s as usize + len) < c);
			let past = first + range[first..].partition_point(|&s| self.at(s as usize + len) == c);
			if first == past {
				break;
			}
			(low, high) = (low + first, low + past);
			len += 1;
		}
		(len, low, high)
	}

	/// The sources of the occurrences in suffix-array range `low..high`, ascending, or none
	/// when the span is common text.
	fn sources_of(&self, low: usize, high: usize, max_sources: usize) -> Vec<u64> {
		if high - low > MAX_OCCURRENCES {
			return Vec::new();
		}
		let mut sources: Vec<u64> = self.suffixes[low..high]
			.iter()
			.map(|&position| {
				let document = self.starts.partition_point(|&start| start <= position) - 1;
				self.sources[document]
			})
			.collect();
		sources.sort_unstable();
		sources.dedup();
		if sources.len() > max_sources {
			sources.clear();
		}
		sources
	}

	/// The maximal spans of at least `min_len` tokens of `answer` found in the training set.
	pub fn spans(&self, answer: &[u32], min_len: usize, max_sources: usize) -> Result<Vec<Span>> {
		if min_len == 0 {
			return Err(Error::Attribution("the shortest span must be at least 1 token".into()));
		}
		if let Some(token) = answer.iter().find(|&&t| t >= self.separator) {
			return Err(Error::Attribution(format!(
				"token {token} is outside the index's vocabulary of {}: the answer comes from \
				 another tokenizer than the training set's",
				self.separator
			)));
		}
		let mut spans: Vec<Span> = Vec::new();
		for start in 0..answer.len() {
			let (len, low, high) = self.longest_match(&answer[start..]);
			let end = start + len;
			// A span ending where the one before ends lies inside it.
			if len < min_len || spans.last().is_some_and(|last| last.end >= end) {
				continue;
			}
			spans.push(Span {
				start,
				end,
				occurrences: high - low,
				sources: self.sources_of(low, high, max_sources),
			});
		}
		Ok(spans)
	}

	/// `answer`'s spans and its sources' shares.
	pub fn attribute(
		&self,
		answer: &[u32],
		min_len: usize,
		max_sources: usize,
	) -> Result<Attribution> {
		let spans = self.spans(answer, min_len, max_sources)?;
		let mut units: BTreeMap<u64, f64> = BTreeMap::new();
		let mut covered = 0;
		for position in 0..answer.len() {
			let covering: Vec<&Span> = spans
				.iter()
				.filter(|s| s.start <= position && position < s.end && !s.sources.is_empty())
				.collect();
			if covering.is_empty() {
				continue;
			}
			covered += 1;
			for span in &covering {
				let part = 1.0 / (covering.len() * span.sources.len()) as f64;
				for source in &span.sources {
					*units.entry(*source).or_default() += part;
				}
			}
		}
		let total = covered as f64;
		let mut shares: Vec<(u64, f64)> =
			units.into_iter().map(|(source, units)| (source, units / total)).collect();
		shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
		Ok(Attribution { tokens: answer.len(), covered, spans, shares })
	}

	/// Writes the index to `path`.
	pub fn save(&self, path: &Path) -> Result<()> {
		let io = |source| Error::Io { path: path.to_path_buf(), source };
		let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
		let mut header = Vec::with_capacity(96);
		header.extend_from_slice(MAGIC);
		header.extend_from_slice(&self.tokenizer);
		header.extend_from_slice(&self.training_set);
		header.extend_from_slice(&self.separator.to_le_bytes());
		header.extend_from_slice(&(self.tokens.len() as u64).to_le_bytes());
		header.extend_from_slice(&(self.starts.len() as u64).to_le_bytes());
		out.write_all(&header).map_err(io)?;
		for words in [&self.tokens, &self.suffixes, &self.starts] {
			for word in words.iter() {
				out.write_all(&word.to_le_bytes()).map_err(io)?;
			}
		}
		for source in &self.sources {
			out.write_all(&source.to_le_bytes()).map_err(io)?;
		}
		out.flush().map_err(io)
	}

	/// Reads an index written by [`SpanIndex::save`].
	pub fn load(path: &Path) -> Result<Self> {
		let file = std::fs::File::open(path).map_err(|e| match e.kind() {
			std::io::ErrorKind::NotFound => {
				Error::Missing { what: "span index", path: path.into() }
			},
			_ => Error::io(path)(e),
		})?;
		let corrupt = |reason: &str| Error::Corrupt {
			what: "span index",
			path: path.to_path_buf(),
			reason: reason.to_string(),
		};
		let mut input = std::io::BufReader::new(file);
		let mut header = [0u8; 8 + 32 + 32 + 4 + 8 + 8];
		input.read_exact(&mut header).map_err(|_| corrupt("it is too short"))?;
		if &header[..8] != MAGIC {
			return Err(corrupt("its first bytes are not PRVSPAN1"));
		}
		let array = |range: std::ops::Range<usize>| -> [u8; 32] {
			header[range].try_into().expect("32 bytes")
		};
		let (tokenizer, training_set) = (array(8..40), array(40..72));
		let separator = u32::from_le_bytes(header[72..76].try_into().expect("4 bytes"));
		let tokens = u64::from_le_bytes(header[76..84].try_into().expect("8 bytes")) as usize;
		let documents = u64::from_le_bytes(header[84..92].try_into().expect("8 bytes")) as usize;
		let expected = tokens as u64 * 8 + documents as u64 * 12;
		let actual = std::fs::metadata(path).map_err(Error::io(path))?.len() - header.len() as u64;
		if actual != expected {
			return Err(corrupt(&format!(
				"its header promises {expected} bytes of body, it has {actual}"
			)));
		}
		let ended = |_| corrupt("it ends early");
		let tokens = read_words(&mut input, tokens, u32::from_le_bytes).map_err(ended)?;
		let suffixes = read_words(&mut input, tokens.len(), u32::from_le_bytes).map_err(ended)?;
		let starts = read_words(&mut input, documents, u32::from_le_bytes).map_err(ended)?;
		let sources = read_words(&mut input, documents, u64::from_le_bytes).map_err(ended)?;
		Ok(Self { tokens, suffixes, starts, sources, separator, tokenizer, training_set })
	}
}

/// `count` little-endian words of `W` bytes from `input`, read in chunks and decoded by
/// `decode` straight into their own type.
fn read_words<const W: usize, T>(
	input: &mut impl Read,
	count: usize,
	decode: fn([u8; W]) -> T,
) -> std::io::Result<Vec<T>> {
	const CHUNK: usize = 16_384;
	let mut words = Vec::with_capacity(count);
	let mut chunk = vec![0u8; W * CHUNK];
	let mut left = count;
	while left > 0 {
		let take = left.min(CHUNK);
		let bytes = &mut chunk[..take * W];
		input.read_exact(bytes)?;
		words.extend(bytes.chunks_exact(W).map(|word| decode(word.try_into().expect("W bytes"))));
		left -= take;
	}
	Ok(words)
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::rng::Rng;

	fn random(rng: &mut Rng, len: usize) -> Vec<u32> {
		(0..len).map(|_| rng.below(5_000) as u32).collect()
	}

	/// Ten sources of 2,000 random tokens; source 7 holds a planted 20-token fact.
	fn corpus() -> (SpanIndex, Vec<u32>) {
		let mut rng = Rng::new(11);
		let fact = random(&mut rng, 20);
		let documents = (0..10u64).map(|source| {
			let mut tokens = random(&mut rng, 2_000);
			if source == 7 {
				tokens.splice(900..900, fact.iter().copied());
			}
			(source, tokens)
		});
		(SpanIndex::build(documents.collect::<Vec<_>>(), 5_000, [1; 32], [2; 32]).unwrap(), fact)
	}

	#[test]
	fn a_planted_span_is_found_with_its_source_and_random_text_finds_nothing() {
		let (index, fact) = corpus();
		let mut rng = Rng::new(99);
		// An answer: 30 new tokens, the fact, 30 new tokens.
		let mut answer = random(&mut rng, 30);
		answer.extend(&fact);
		answer.extend(random(&mut rng, 30));
		let attribution = index.attribute(&answer, 8, 4).unwrap();
		assert_eq!(attribution.spans.len(), 1, "{:?}", attribution.spans);
		let span = &attribution.spans[0];
		// The match may run a token past the fact by chance, never short of it.
		assert!(span.start <= 30 && span.end >= 50, "{span:?}");
		assert_eq!(span.sources, [7]);
		assert_eq!(attribution.shares, [(7, 1.0)]);
		assert_eq!(attribution.covered, span.end - span.start);

		let noise = random(&mut rng, 256);
		let nothing = index.attribute(&noise, 8, 4).unwrap();
		assert!(nothing.spans.is_empty() && nothing.shares.is_empty(), "{:?}", nothing.spans);
	}

	#[test]
	fn spans_are_maximal_and_common_text_credits_no_one() {
		let documents = vec![
			(1, vec![1, 2, 3, 4, 5, 6]),
			(2, vec![4, 5, 6, 7, 8, 9]),
			(3, vec![4, 5, 6, 7, 8, 9]),
			(4, vec![20, 21, 22]),
		];
		let index = SpanIndex::build(documents, 30, [0; 32], [0; 32]).unwrap();
		// 1 2 3 4 5 6 comes from source 1; 4 5 6 7 8 9 from 2 and 3 (4 5 6 also from 1, but
		// inside the longer span that starts at 3 only through sources 2 and 3).
		let spans = index.spans(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 3, 8).unwrap();
		let found: Vec<_> = spans.iter().map(|s| (s.start, s.end, s.sources.clone())).collect();
		assert_eq!(found, [(0, 6, vec![1]), (3, 9, vec![2, 3])]);
		// Tokens 0..3 are source 1's alone; 3..6 are split between the two spans.
		let shares = index.attribute(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 3, 8).unwrap().shares;
		let total: f64 = shares.iter().map(|s| s.1).sum();
		assert!((total - 1.0).abs() < 1e-12);
		assert_eq!(shares[0].0, 1);
		assert!((shares[0].1 - 4.5 / 9.0).abs() < 1e-12, "{shares:?}");
		// Held by more than one source each: common text.
		let common = index.spans(&[4, 5, 6, 7, 8, 9], 3, 1).unwrap();
		assert_eq!(common.len(), 1);
		assert!(common[0].sources.is_empty());
		assert_eq!(common[0].occurrences, 2);
		// No span crosses two documents, even where their tokens run on.
		assert!(index.spans(&[8, 9, 20, 21], 3, 8).unwrap().is_empty());
	}

	#[test]
	fn bad_input_is_refused() {
		let (index, _) = corpus();
		let error = index.spans(&[1, 2, 3], 0, 4).unwrap_err().to_string();
		assert!(error.contains("at least 1 token"), "{error}");
		let error = index.spans(&[1, 5_000], 2, 4).unwrap_err().to_string();
		assert!(error.contains("outside the index's vocabulary of 5000"), "{error}");
		let error =
			SpanIndex::build([(3, vec![1, 30])], 30, [0; 32], [0; 32]).unwrap_err().to_string();
		assert!(error.contains("source 3 holds token 30"), "{error}");
	}

	#[test]
	fn an_index_survives_a_round_trip_and_a_damaged_file_is_refused() {
		let (index, fact) = corpus();
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("corpus.spans");
		index.save(&path).unwrap();
		let loaded = SpanIndex::load(&path).unwrap();
		assert_eq!(loaded, index);
		assert_eq!(loaded.spans(&fact, 8, 4).unwrap()[0].sources, [7]);

		let bytes = std::fs::read(&path).unwrap();
		std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
		let error = SpanIndex::load(&path).unwrap_err().to_string();
		assert!(error.contains("is not a valid span index"), "{error}");
		std::fs::write(&path, b"something else entirely, long enough to hold a header.......................................").unwrap();
		let error = SpanIndex::load(&path).unwrap_err().to_string();
		assert!(error.contains("not PRVSPAN1"), "{error}");
		let error = SpanIndex::load(&dir.path().join("absent")).unwrap_err().to_string();
		assert!(error.contains("span index"), "{error}");
	}
}
