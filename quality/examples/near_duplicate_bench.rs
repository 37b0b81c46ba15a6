//! Times one near-duplicate check against a datanet of N files (default 100,000), with the
//! linear scan of `Corpus` and with the LSH / multi-index `Index`, on the same generated set:
//! random texts and image hashes, one in ten a planted near-duplicate of an earlier one.
//! Recall is the share of the linear scan's matches the index reports identically.
//!
//! Usage: `near_duplicate_bench [N]`; prints one JSON object.

use std::time::Instant;

use provenant_quality::{index::Index, minhash, Corpus, Fingerprint};

/// xorshift64: a fixed stream of words, so every run builds the same datanet.
struct Words(u64);

impl Words {
	fn next(&mut self) -> u64 {
		self.0 ^= self.0 << 13;
		self.0 ^= self.0 >> 7;
		self.0 ^= self.0 << 17;
		self.0
	}

	fn text(&mut self, count: usize) -> Vec<String> {
		(0..count).map(|_| format!("w{}", self.next() % 20_000)).collect()
	}
}

fn text_fingerprint(words: &[String]) -> Fingerprint {
	Fingerprint::Text(Box::new(minhash::signature(&words.join(" "))))
}

/// `f` run `queries.len()` times: mean microseconds per call, and the answers.
fn timed<T>(queries: &[Fingerprint], f: impl Fn(&Fingerprint) -> T) -> (f64, Vec<T>) {
	let start = Instant::now();
	let answers: Vec<T> = queries.iter().map(&f).collect();
	(start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64, answers)
}

fn main() {
	let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
	let mut rng = Words(0x5eed);
	let mut corpus = Corpus::default();
	let mut index = Index::new();
	let mut texts: Vec<Vec<String>> = Vec::new();
	let mut images: Vec<u64> = Vec::new();
	let build = Instant::now();
	// Half texts, half images; ids shared by both, as in a datanet's log.
	for id in 0..n {
		let fingerprint = if id % 2 == 0 {
			let words = if id % 20 == 18 {
				// A near-duplicate: an earlier text with a few words changed.
				let mut words: Vec<String> = texts[rng.next() as usize % texts.len()].clone();
				for _ in 0..2 {
					let at = rng.next() as usize % words.len();
					words[at] = format!("edit{}", rng.next() % 1000);
				}
				words
			} else {
				rng.text(80)
			};
			let fingerprint = text_fingerprint(&words);
			texts.push(words);
			fingerprint
		} else {
			let hash = if id % 20 == 19 {
				let earlier: u64 = images[rng.next() as usize % images.len()];
				earlier ^ (1 << (rng.next() % 64)) ^ (1 << (rng.next() % 64))
			} else {
				rng.next()
			};
			images.push(hash);
			Fingerprint::Image(hash)
		};
		corpus.insert(id, fingerprint.clone());
		index.insert(id, fingerprint).expect("an index in memory");
	}
	let build_seconds = build.elapsed().as_secs_f64();

	// 1,000 queries: half new files, half planted near-duplicates of files in the datanet.
	let mut queries = Vec::new();
	for q in 0..1_000u64 {
		queries.push(match q % 4 {
			0 => text_fingerprint(&rng.text(80)),
			1 => {
				let mut words = texts[rng.next() as usize % texts.len()].clone();
				let at = rng.next() as usize % words.len();
				words[at] = "changed".into();
				text_fingerprint(&words)
			},
			2 => Fingerprint::Image(rng.next()),
			_ => Fingerprint::Image(images[rng.next() as usize % images.len()] ^ 0b101),
		});
	}
	let (linear_us, linear) = timed(&queries, |f| corpus.near_duplicate_of(f));
	let (index_us, indexed) = timed(&queries, |f| index.near_duplicate_of(f, |_| true));
	let found = linear.iter().filter(|answer| answer.is_some()).count();
	let same = linear.iter().zip(&indexed).filter(|(l, i)| l.is_some() && l == i).count();
	let extra = linear.iter().zip(&indexed).filter(|(l, i)| l.is_none() && i.is_some()).count();
	println!(
		"{}",
		serde_json::json!({
			"files": n,
			"queries": queries.len(),
			"buildSeconds": build_seconds,
			"linearMicrosPerCheck": linear_us,
			"indexMicrosPerCheck": index_us,
			"speedup": linear_us / index_us,
			"linearMatches": found,
			"recall": same as f64 / found.max(1) as f64,
			"indexOnlyMatches": extra,
		})
	);
}
