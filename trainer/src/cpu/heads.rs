//! Splitting a projection `[batch, seq, heads · head_dim]` into heads `[batch, heads, seq,
//! head_dim]`, with the rotary embedding applied on the way.
//!
//! The rotation turns each pair `(x₁, x₂)` by the angle of its position and frequency: pairs are
//! `(j, j + d/2)` in the half-split layout (HF LLaMA's `rotate_half`) and `(2j, 2j + 1)` in the
//! interleaved one (ChatGLM). Only the first `rotary_dim` values of a head turn; the rest pass
//! through. The backward pass is the same split turned the other way.

use super::{contiguous, read, tensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// Cosines and sines `[positions, rotary_dim / 2]` of the rotary embedding.
#[derive(Clone, Debug)]
pub struct RopeTables {
	/// `cos(position · frequency)`.
	pub cos: Arc<Vec<f32>>,
	/// `sin(position · frequency)`.
	pub sin: Arc<Vec<f32>>,
	/// How many of a head's values turn (ChatGLM turns half).
	pub rotary_dim: usize,
	/// Pairs `(2j, 2j + 1)` rather than `(j, j + d/2)`.
	pub interleaved: bool,
}

impl RopeTables {
	/// Turns one head's vector at `position` from `src` into `dst`; `direction` −1 undoes it.
	fn turn(&self, src: &[f32], dst: &mut [f32], position: usize, direction: f32) {
		let half = self.rotary_dim / 2;
		let cos = &self.cos[position * half..][..half];
		let sin = &self.sin[position * half..][..half];
		for j in 0..half {
			let (a, b) = if self.interleaved { (2 * j, 2 * j + 1) } else { (j, j + half) };
			let (c, s) = (cos[j], direction * sin[j]);
			dst[a] = src[a] * c - src[b] * s;
			dst[b] = src[b] * c + src[a] * s;
		}
		dst[self.rotary_dim..].copy_from_slice(&src[self.rotary_dim..]);
	}
}

/// Apply with `x.apply_op1(split)` to a contiguous `[batch, seq, heads · head_dim]`.
pub struct SplitHeads {
	/// Heads in the projection.
	pub heads: usize,
	/// Values per head.
	pub head_dim: usize,
	/// The rotation, for queries and keys; `None` for values.
	pub rope: Option<RopeTables>,
	/// Position of the first row (tokens already in the cache).
	pub offset: usize,
}

impl SplitHeads {
	fn copy(&self, src: &[f32], dst: &mut [f32], position: usize, direction: f32) {
		match &self.rope {
			Some(rope) => rope.turn(src, dst, position, direction),
			None => dst.copy_from_slice(src),
		}
	}
}

impl CustomOp1 for SplitHeads {
	fn name(&self) -> &'static str {
		"fused-split-heads"
	}

	fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let x = contiguous(storage, layout, self.name())?;
		let (batch, seq, width) = layout.shape().dims3()?;
		let (heads, hd) = (self.heads, self.head_dim);
		if width != heads * hd {
			candle_core::bail!("{}: width {width} is not {heads} heads of {hd}", self.name())
		}
		let mut y = vec![0f32; x.len()];
		y.par_chunks_mut(seq * hd).enumerate().for_each(|(bh, y)| {
			let (b, h) = (bh / heads, bh % heads);
			for (i, dst) in y.chunks_mut(hd).enumerate() {
				let src = &x[(b * seq + i) * width + h * hd..][..hd];
				self.copy(src, dst, self.offset + i, 1.0);
			}
		});
		Ok((CpuStorage::F32(y), Shape::from((batch, heads, seq, hd))))
	}

	fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		let (_, seq, width) = x.dims3()?;
		let (heads, hd) = (self.heads, self.head_dim);
		let dx = read(grad, |g| {
			let mut dx = vec![0f32; g.len()];
			dx.par_chunks_mut(seq * width).enumerate().for_each(|(b, dx)| {
				for i in 0..seq {
					for h in 0..heads {
						let src = &g[((b * heads + h) * seq + i) * hd..][..hd];
						self.copy(src, &mut dx[i * width + h * hd..][..hd], self.offset + i, -1.0);
					}
				}
			});
			Ok(dx)
		})?;
		Ok(Some(tensor(dx, x.shape())?))
	}
}
