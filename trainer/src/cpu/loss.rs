//! The output layer and cross-entropy in one op: `Σᵢ mᵢ · (logsumexp(hᵢ Wᵀ) − hᵢ · W[tᵢ])` over
//! positions `i` with targets `tᵢ` and loss mask `mᵢ`.
//!
//! Positions are taken in chunks of at most [`MAX_CHUNK_LOGITS`] logits, so the
//! `[positions, vocab]` matrix never exists whole (at Qwen's 151,936-token vocabulary and a
//! batch of 8 × 512 that would be 2.5 GB), and masked-out positions (prompts, padding) are
//! skipped entirely. The gradient with respect to `h`, `mᵢ · (softmax(hᵢ Wᵀ) − onehot(tᵢ)) W`,
//! is formed in the same pass while a chunk's logits are at hand and kept until the backward
//! pass scales it by the incoming gradient (the loss is the graph's last node, so it is a
//! scalar).

use super::{
	blas::{sgemm, Operand},
	contiguous,
	gemm::{Half, PanelCache, Weight},
	read, read_half, tensor, vector, Saved,
};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, TensorId};
use rayon::prelude::*;
use std::sync::Arc;

/// Logits held at once: 8 Mi floats, 32 MiB. At 4 Mi, GPT-2's chunks of 83 positions made
/// products too thin to amortise packing the vocabulary matrix; 166 gained 4% a step.
pub const MAX_CHUNK_LOGITS: usize = 1 << 23;

/// Apply to the final hidden states `[…, hidden]`, contiguous, every leading position one
/// target: the result is the masked loss sum, a scalar.
pub struct LinearCrossEntropy {
	/// The frozen output layer `[vocab, hidden]`: f32, or bf16 or f16 for products on that
	/// format's kernel (which the CPU must have).
	pub weight: Tensor,
	/// The next token at each position.
	pub targets: Vec<u32>,
	/// Each position's weight in the loss: 0 for prompts and padding, else 1.
	pub mask: Vec<f32>,
	/// Whether the backward pass will be asked for (training) or not (evaluation).
	pub want_gradient: bool,
	/// `∂loss/∂h`, from the forward pass.
	hidden_gradient: Saved,
	/// The model's panels of an f16 `weight`, packed once for all its products.
	panels: Option<Arc<PanelCache>>,
}

impl LinearCrossEntropy {
	/// The loss of `weight`'s logits against `targets`, weighted by `mask`.
	pub fn new(weight: Tensor, targets: Vec<u32>, mask: Vec<f32>, want_gradient: bool) -> Self {
		Self {
			weight,
			targets,
			mask,
			want_gradient,
			hidden_gradient: Saved::default(),
			panels: None,
		}
	}

	/// Reads an f16 `weight`'s panels from `cache` (packed on first use) instead of packing
	/// them in each chunk's products.
	pub fn with_panels(self, cache: Arc<PanelCache>) -> Self {
		Self { panels: Some(cache), ..self }
	}

	/// The loss summed over the `active` positions of `hidden` `[positions, width]`, a chunk
	/// at a time, with each one's gradient written into `d_hidden` when it is wanted.
	fn chunked_loss(
		&self,
		weight: Stored,
		(vocab, width): (usize, usize),
		hidden: &[f32],
		active: &[usize],
		d_hidden: &mut [f32],
	) -> Result<f64> {
		let chunk = (MAX_CHUNK_LOGITS / vocab).clamp(1, 1024);
		let mut rows = vec![0f32; chunk * width];
		let mut logits = vec![0f32; chunk * vocab];
		let mut d_rows = vec![0f32; chunk * width];
		let mut total = 0f64;
		for positions in active.chunks(chunk) {
			let n = positions.len();
			for (row, &i) in rows.chunks_mut(width).zip(positions) {
				row.copy_from_slice(&hidden[i * width..][..width]);
			}
			let logits = &mut logits[..n * vocab];
			weight.product(&rows[..n * width], n, (vocab, width), true, logits);
			let losses: Vec<f64> = logits
				.par_chunks_mut(vocab)
				.zip(positions)
				.map(|(row, &i)| {
					let (target, weight) = (self.targets[i] as usize, self.mask[i]);
					let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
					let target_logit = row[target];
					// The row becomes e^(logit − max); softmax is that over its sum.
					let sum = vector::exp_shifted(row, max);
					let lse = max + sum.ln();
					let loss = weight as f64 * (lse - target_logit) as f64;
					if self.want_gradient {
						let scale = weight / sum;
						row.iter_mut().for_each(|v| *v *= scale);
						row[target] -= weight;
					}
					loss
				})
				.collect();
			total += losses.iter().sum::<f64>();
			if self.want_gradient {
				let d_rows = &mut d_rows[..n * width];
				weight.product(logits, n, (vocab, width), false, d_rows);
				for (row, &i) in d_rows.chunks(width).zip(positions) {
					d_hidden[i * width..][..width].copy_from_slice(row);
				}
			}
		}
		Ok(total)
	}
}

/// The output layer's weight as stored: f32, or 16 bits for a half-precision base.
#[derive(Clone, Copy)]
enum Stored<'a> {
	F32(&'a [f32]),
	/// With the weight's panel cache and tensor id, where the model keeps one.
	Half(&'a [u16], Half, Option<(&'a PanelCache, TensorId)>),
}

impl Stored<'_> {
	/// `c = a · Wᵀ` (`transposed`: the logits) or `c = a · W` (the hidden states' gradient)
	/// for `a` of `m` rows and `W` `[vocab, width]`.
	fn product(
		self,
		a: &[f32],
		m: usize,
		(vocab, width): (usize, usize),
		transposed: bool,
		c: &mut [f32],
	) {
		match self {
			Stored::Half(w, half, cache) => {
				let weight = Weight::new(w, vocab, width, transposed);
				let panels = cache.and_then(|(cache, id)| cache.panels(id, half, weight));
				half.product(a, m, weight, panels, c, false)
			},
			Stored::F32(w) => {
				let (n, k, b) = match transposed {
					true => (vocab, width, Operand::transposed(w, width)),
					false => (width, vocab, Operand::plain(w, width)),
				};
				sgemm(m, n, k, 1.0, Operand::plain(a, k), b, 0.0, c, n)
			},
		}
	}
}

impl CustomOp1 for LinearCrossEntropy {
	fn name(&self) -> &'static str {
		"fused-linear-cross-entropy"
	}

	fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let hidden = contiguous(storage, layout, self.name())?;
		let width = layout.shape().dims().last().copied().unwrap_or(0);
		let positions = layout.shape().elem_count() / width.max(1);
		let (vocab, weight_width) = self.weight.dims2()?;
		if weight_width != width || self.targets.len() != positions || self.mask.len() != positions
		{
			candle_core::bail!(
				"{}: hidden {positions}×{width}, weight {vocab}×{weight_width}, {} targets",
				self.name(),
				self.targets.len()
			)
		}
		if let Some(t) = self.targets.iter().find(|&&t| t as usize >= vocab) {
			candle_core::bail!("{}: target {t} is outside the vocabulary of {vocab}", self.name())
		}
		let active: Vec<usize> = (0..positions).filter(|&i| self.mask[i] != 0.0).collect();
		let mut d_hidden =
			if self.want_gradient { vec![0f32; positions * width] } else { Vec::new() };
		let dims = (vocab, width);
		let cache = self.panels.as_deref().map(|cache| (cache, self.weight.id()));
		let total = match read_half(&self.weight, |bits, half| {
			let weight = Stored::Half(bits, half, cache);
			self.chunked_loss(weight, dims, hidden, &active, &mut d_hidden)
		})? {
			Some(total) => total,
			None => read(&self.weight, |w| {
				self.chunked_loss(Stored::F32(w), dims, hidden, &active, &mut d_hidden)
			})?,
		};
		self.hidden_gradient.put(d_hidden)?;
		Ok((CpuStorage::F32(vec![total as f32]), Shape::from(())))
	}

	fn bwd(&self, hidden: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		if !self.want_gradient {
			candle_core::bail!("{}: built for evaluation, without a gradient", self.name())
		}
		let scale = grad.to_scalar::<f32>()?;
		let mut d_hidden = self.hidden_gradient.take()?;
		d_hidden.iter_mut().for_each(|v| *v *= scale);
		Ok(Some(tensor(d_hidden, hidden.shape())?))
	}
}
