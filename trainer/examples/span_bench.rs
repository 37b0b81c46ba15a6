//! Span attribution at scale: builds the index over a generated training set of N tokens
//! (default 10,000,000) and times the lookup of 256-token answers against it, reporting the
//! build's memory per token (peak RSS growth) and its time.
//!
//! The training set imitates text: documents of phrases drawn with a Zipf law from 200,000
//! phrases of 2–12 tokens over a 49,152-token vocabulary (SmolLM2's), so common phrases repeat
//! everywhere and long verbatim matches exist. Each answer splices three 40-token passages of
//! random documents between fresh phrases, as a model repeating what it learned would.
//!
//! Run with `scripts/bench-spans.sh [N]`.

use std::time::Instant;

use provenant_trainer::{attribution::SpanIndex, rng::Rng};

const VOCAB: u32 = 49_152;
const PHRASES: usize = 200_000;
const DOCUMENT_TOKENS: usize = 2_000;
const ANSWERS: usize = 100;

/// Peak resident memory so far, in bytes (Linux's VmHWM).
fn peak_rss() -> u64 {
	let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
	status
		.lines()
		.find_map(|line| line.strip_prefix("VmHWM:"))
		.and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
		.map_or(0, |kb| kb * 1024)
}

struct Text {
	phrases: Vec<Vec<u32>>,
	/// Cumulative Zipf weights of the phrases.
	cumulative: Vec<f64>,
}

impl Text {
	fn new(rng: &mut Rng) -> Self {
		let phrases: Vec<Vec<u32>> = (0..PHRASES)
			.map(|_| (0..2 + rng.below(11)).map(|_| rng.below(VOCAB as usize) as u32).collect())
			.collect();
		let mut total = 0.0;
		let cumulative = (1..=PHRASES)
			.map(|rank| {
				total += 1.0 / rank as f64;
				total
			})
			.collect();
		Self { phrases, cumulative }
	}

	fn phrase(&self, rng: &mut Rng) -> &[u32] {
		let draw = rng.next_f32() as f64 * self.cumulative[PHRASES - 1];
		let index = self.cumulative.partition_point(|&c| c < draw).min(PHRASES - 1);
		&self.phrases[index]
	}

	fn document(&self, rng: &mut Rng, len: usize) -> Vec<u32> {
		let mut tokens = Vec::with_capacity(len + 12);
		while tokens.len() < len {
			tokens.extend_from_slice(self.phrase(rng));
		}
		tokens.truncate(len);
		tokens
	}
}

fn main() {
	let n: usize = std::env::args().nth(1).map_or(10_000_000, |n| n.parse().expect("a count"));
	let documents = n / (DOCUMENT_TOKENS + 1);
	let mut rng = Rng::new(2024);
	let text = Text::new(&mut rng);
	// Each document is made from its own seed, so the answers can quote any of them without
	// the whole set being held twice.
	let document =
		|index: usize| text.document(&mut Rng::derive(7, &[index as u64]), DOCUMENT_TOKENS);

	let before = peak_rss();
	let started = Instant::now();
	let index =
		SpanIndex::build((0..documents).map(|i| (i as u64, document(i))), VOCAB, [0; 32], [0; 32])
			.expect("builds");
	let build = started.elapsed();
	let grown = peak_rss().saturating_sub(before);
	println!(
		"index: {} tokens in {documents} documents, built in {:.1} s ({:.2} M tokens/s); peak \
		 memory grew by {:.0} MiB, {:.2} bytes a token",
		index.len(),
		build.as_secs_f64(),
		index.len() as f64 / build.as_secs_f64() / 1e6,
		grown as f64 / (1 << 20) as f64,
		grown as f64 / index.len() as f64
	);

	let mut times = Vec::with_capacity(ANSWERS);
	let mut found = 0;
	let mut right = 0;
	for _ in 0..ANSWERS {
		let mut answer = Vec::with_capacity(300);
		let mut quoted = Vec::new();
		for _ in 0..3 {
			let fresh = answer.len() + 40;
			while answer.len() < fresh {
				answer.extend_from_slice(text.phrase(&mut rng));
			}
			let source = rng.below(documents);
			let at = rng.below(DOCUMENT_TOKENS - 40);
			answer.extend_from_slice(&document(source)[at..at + 40]);
			quoted.push(source as u64);
		}
		while answer.len() < 256 {
			answer.extend_from_slice(text.phrase(&mut rng));
		}
		answer.truncate(256);
		let started = Instant::now();
		let attribution = index.attribute(&answer, 20, 8).expect("valid answer");
		times.push(started.elapsed());
		// Each quoted passage should be found as a span naming its document.
		for source in &quoted {
			if attribution.spans.iter().any(|span| span.sources.contains(source)) {
				right += 1;
			}
		}
		found += attribution.spans.len();
	}
	times.sort();
	let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
	println!(
		"lookup of a 256-token answer (spans ≥ 20 tokens): median {:.2} ms, slowest {:.2} ms over \
		 {ANSWERS} answers; {found} spans found, {right} of {} quoted passages traced to their \
		 document",
		ms(times[ANSWERS / 2]),
		ms(times[ANSWERS - 1]),
		ANSWERS * 3
	);
}
