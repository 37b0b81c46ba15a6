//! Serving batches: many sequences through one forward pass of the base.
//!
//! Continuous batching (Orca; Yu et al., 2022) runs every active request in the same step: one
//! request's whole prompt beside others' single next tokens. The rows of all sequences are
//! stacked into one `[1, rows, hidden]` input, so each linear layer's base product runs once;
//! only attention splits them, each sequence attending to its own key-value cache. Requests for
//! different adapters share that step too: each adapter's low-rank update is added onto its own
//! rows only ([`RowAdapters`], the segmented products of Punica and S-LoRA).

use super::{KvCache, Model};
use crate::{
	cpu::gemm::Half,
	linear::{DetachedAdapter, ForwardMode, RowAdapters},
	Error, Result,
};
use candle_core::{Tensor, D};

/// One sequence's part of a batch step.
pub struct Sequence<'a> {
	/// Its new tokens: a prompt (or a chunk of one), or the one token sampled last.
	pub tokens: &'a [u32],
	/// Keys and values of its positions so far; the new tokens' are added.
	pub cache: &'a mut KvCache,
	/// The adapter it is served with; `None` for the base model.
	pub adapter: Option<&'a DetachedAdapter>,
}

/// Consecutive rows of `counts` that share an adapter, as row groups.
fn groups<'a>(
	adapters: impl Iterator<Item = Option<&'a DetachedAdapter>>,
	counts: impl Iterator<Item = usize>,
) -> RowAdapters<'a> {
	let mut rows = RowAdapters::default();
	let mut first = 0;
	for (adapter, count) in adapters.zip(counts) {
		if let Some(adapter) = adapter {
			match rows.groups.last_mut() {
				Some((start, rows, last))
					if std::ptr::eq(*last, adapter) && *start + *rows == first =>
				{
					*rows += count
				},
				_ => rows.groups.push((first, count, adapter)),
			}
		}
		first += count;
	}
	rows
}

/// Inference over rows with these adapters, the base's products on `half`'s kernel if set.
fn with_rows<'a>(rows: &'a RowAdapters<'a>, half: Option<Half>) -> ForwardMode<'a> {
	ForwardMode { rows: (!rows.groups.is_empty()).then_some(rows), half, ..ForwardMode::EVAL }
}

impl Model {
	/// Logits `[sequences, vocab]` of each sequence's last new token, after adding the new
	/// tokens' keys and values to each cache. Sequences with the same adapter placed next to
	/// each other share its products.
	pub fn forward_batch(&self, sequences: &mut [Sequence<'_>]) -> Result<Tensor> {
		self.batch_logits(sequences, false)
	}

	/// `Σ −log p(next token)` over `tokens` served with `adapter`, and how many tokens that
	/// predicts: the text is read in windows of `window` tokens, each from an empty cache, so
	/// a window's first token is not predicted (as the trainer's blocks).
	pub fn token_loss(
		&self,
		tokens: &[u32],
		adapter: Option<&DetachedAdapter>,
		window: usize,
	) -> Result<(f64, usize)> {
		let (mut total, mut predicted) = (0.0, 0);
		for chunk in tokens.chunks(window.max(2)).filter(|chunk| chunk.len() > 1) {
			let mut cache = KvCache::default();
			let inputs = &chunk[..chunk.len() - 1];
			let mut sequence = [Sequence { tokens: inputs, cache: &mut cache, adapter }];
			let logits = self.batch_logits(&mut sequence, true)?;
			let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
			let targets = Tensor::new(&chunk[1..], &self.device)?.unsqueeze(D::Minus1)?;
			total -= log_probs.gather(&targets, D::Minus1)?.sum_all()?.to_scalar::<f32>()? as f64;
			predicted += inputs.len();
		}
		Ok((total, predicted))
	}

	/// Logits of each sequence's new tokens: all of them (`[rows, vocab]`, in order) or only
	/// each sequence's last (`[sequences, vocab]`).
	fn batch_logits(&self, sequences: &mut [Sequence<'_>], every_row: bool) -> Result<Tensor> {
		let mut parts = Vec::with_capacity(sequences.len());
		let mut ids = Vec::new();
		let mut positions = Vec::new();
		for (i, sequence) in sequences.iter().enumerate() {
			let (offset, rows) = (sequence.cache.len(), sequence.tokens.len());
			if rows == 0 {
				return Err(Error::hyper("tokens", format!("sequence {i} has no new tokens")));
			}
			if offset + rows > self.cfg.max_positions {
				return Err(Error::hyper(
					"max_tokens",
					format!(
						"sequence {i} would reach {} positions, past the model's {} \
						 (max_position_embeddings)",
						offset + rows,
						self.cfg.max_positions
					),
				));
			}
			parts.push((offset, rows));
			ids.extend_from_slice(sequence.tokens);
			positions.extend((offset..offset + rows).map(|p| p as u32));
		}
		let total = ids.len();
		let device = &self.device;
		let mut x = self.embed.embedding(&Tensor::new(ids, device)?)?;
		if let Some(table) = &self.positions {
			x = (x + table.embedding(&Tensor::new(positions, device)?)?)?;
		}
		let mut x = x.unsqueeze(0)?;
		if let Some(norm) = &self.embedding_norm {
			x = norm.forward(&x, ForwardMode::EVAL)?;
		}
		let adapters = || sequences.iter().map(|s| s.adapter);
		let all_rows = groups(adapters(), parts.iter().map(|p| p.1));
		let last_rows = groups(adapters(), parts.iter().map(|_| 1));
		let (mode, last_mode) = (with_rows(&all_rows, self.half), with_rows(&last_rows, self.half));
		for sequence in sequences.iter_mut() {
			sequence.cache.layers.resize(self.blocks.len(), None);
		}
		for (i, block) in self.blocks.iter().enumerate() {
			let caches = sequences.iter_mut().map(|s| &mut s.cache.layers[i]).collect();
			let normed = block.attn_norm.forward(&x, mode)?;
			x = block.attention.forward_ragged(&self.heads, &x, &normed, &parts, caches, mode)?;
			x = block.mlp.forward(&x, &block.mlp_norm.forward(&x, mode)?, mode)?;
		}
		if every_row {
			let x = self.final_norm.forward(&x.squeeze(0)?, mode)?;
			return self.lm_head.forward(&x, mode);
		}
		let last: Vec<u32> = parts
			.iter()
			.scan(0, |end, &(_, rows)| {
				*end += rows;
				Some(*end as u32 - 1)
			})
			.collect();
		debug_assert_eq!(last.last().copied(), Some(total as u32 - 1));
		let x = x.squeeze(0)?.index_select(&Tensor::new(last, device)?, 0)?;
		let x = self.final_norm.forward(&x, last_mode)?;
		self.lm_head.forward(&x, last_mode)
	}
}
