//! Text generation for `chat`: greedy, temperature and nucleus (top-p) sampling over a
//! key-value cache, streaming each piece of text as soon as it decodes.

use crate::{
	linear::ForwardMode,
	model::{KvCache, Model},
	rng::Rng,
	Error, Result,
};
use candle_core::{IndexOp, Tensor};
use tokenizers::Tokenizer;

/// How the next token is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
	/// 0 picks the most likely token (greedy).
	pub temperature: f64,
	/// Keep the smallest set of tokens whose probability reaches this.
	pub top_p: f64,
	/// Seed of the sampler.
	pub seed: u64,
}

impl Sampling {
	/// Greedy decoding.
	pub const GREEDY: Sampling = Sampling { temperature: 0.0, top_p: 1.0, seed: 0 };

	/// Checks the settings.
	pub fn validate(&self) -> Result<()> {
		if !(self.temperature.is_finite() && self.temperature >= 0.0) {
			return Err(Error::hyper(
				"temperature",
				format!("must be ≥ 0, got {}", self.temperature),
			));
		}
		if !(self.top_p > 0.0 && self.top_p <= 1.0) {
			return Err(Error::hyper("top_p", format!("must be in (0, 1], got {}", self.top_p)));
		}
		Ok(())
	}
}

/// Picks a token from `logits` (`[vocab]`).
pub fn pick(logits: &[f32], sampling: &Sampling, rng: &mut Rng) -> u32 {
	let argmax = || {
		logits
			.iter()
			.enumerate()
			.fold((0, f32::NEG_INFINITY), |best, (i, &l)| if l > best.1 { (i, l) } else { best })
			.0 as u32
	};
	if sampling.temperature == 0.0 {
		return argmax();
	}
	let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
	let mut probs: Vec<(usize, f64)> = logits
		.iter()
		.enumerate()
		.map(|(i, &l)| (i, (((l - max) as f64) / sampling.temperature).exp()))
		.collect();
	let total: f64 = probs.iter().map(|p| p.1).sum();
	probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
	let mut kept = 0.0;
	let mut cut = probs.len();
	for (i, (_, p)) in probs.iter().enumerate() {
		kept += p / total;
		if kept >= sampling.top_p {
			cut = i + 1;
			break;
		}
	}
	let probs = &probs[..cut];
	let mass: f64 = probs.iter().map(|p| p.1).sum();
	let mut draw = rng.next_f32() as f64 * mass;
	for (i, p) in probs {
		draw -= p;
		if draw <= 0.0 {
			return *i as u32;
		}
	}
	probs.last().map(|p| p.0 as u32).unwrap_or_else(argmax)
}

/// What [`generate`] produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
	/// The generated text.
	pub text: String,
	/// Its token ids, the stop token excluded.
	pub ids: Vec<u32>,
}

/// Continues `prompt` by up to `max_new` tokens, stopping at any of `stop`; calls `emit` with
/// each new piece of text.
pub fn generate(
	model: &Model,
	tokenizer: &Tokenizer,
	prompt: &[u32],
	max_new: usize,
	stop: &[u32],
	sampling: &Sampling,
	mut emit: impl FnMut(&str),
) -> Result<Generation> {
	sampling.validate()?;
	let mut rng = Rng::new(sampling.seed);
	let mut cache = KvCache::default();
	let mut generated: Vec<u32> = Vec::new();
	let mut shown = 0;
	let mut input = prompt.to_vec();
	let room = model.cfg.max_positions.saturating_sub(prompt.len());
	for _ in 0..max_new.min(room) {
		let ids = Tensor::new(input.as_slice(), model.device())?.unsqueeze(0)?;
		let logits = model.forward(&ids, Some(&mut cache), ForwardMode::EVAL)?;
		let last = logits.i((0, input.len() - 1))?.to_vec1::<f32>()?;
		let next = pick(&last, sampling, &mut rng);
		if stop.contains(&next) {
			break;
		}
		generated.push(next);
		let text =
			tokenizer.decode(&generated, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
		// A multi-byte character may span tokens: print only once it decodes whole.
		if text.len() > shown && !text.ends_with('\u{FFFD}') {
			emit(&text[shown..]);
			shown = text.len();
		}
		input = vec![next];
	}
	let text = tokenizer.decode(&generated, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
	Ok(Generation { text, ids: generated })
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn greedy_takes_the_largest_and_top_p_keeps_the_nucleus() {
		let logits = [0.0, 3.0, 1.0, -2.0];
		let mut rng = Rng::new(1);
		assert_eq!(pick(&logits, &Sampling::GREEDY, &mut rng), 1);
		// With top_p small enough only the most likely token survives.
		let narrow = Sampling { temperature: 1.0, top_p: 0.5, seed: 0 };
		assert!((0..50).all(|_| pick(&logits, &narrow, &mut rng) == 1));
		let wide = Sampling { temperature: 5.0, top_p: 1.0, seed: 0 };
		let picks: std::collections::HashSet<u32> =
			(0..200).map(|_| pick(&logits, &wide, &mut rng)).collect();
		assert!(picks.len() >= 3, "{picks:?}");
	}
}
