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
	pub(crate) fn turn(&self, src: &[f32], dst: &mut [f32], position: usize, direction: f32) {
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

/// Apply with `x.apply_op1(split)` to a contiguous `[batch, seq, width]` whose rows hold the
/// parts (for example q, k and v) side by side; the result is `[batch, Σ heads, seq, head_dim]`,
/// every part's heads in turn.
pub struct SplitHeads {
	/// The parts of a row, in order.
	pub parts: Vec<HeadPart>,
	/// Values per head.
	pub head_dim: usize,
	/// The rotation for the parts that turn.
	pub rope: Option<RopeTables>,
	/// Rows hold `[heads, parts, head_dim]` (BLOOM's per-head q/k/v) rather than
	/// `[parts, heads, head_dim]`; the parts must then have one head count.
	pub interleaved_parts: bool,
	/// Position of the first row (tokens already in the cache).
	pub offset: usize,
}

/// One part of a [`SplitHeads`] input row.
#[derive(Clone, Copy, Debug)]
pub struct HeadPart {
	/// Heads in the part.
	pub heads: usize,
	/// Whether the rotary embedding applies (queries and keys) or not (values).
	pub rotated: bool,
}

impl SplitHeads {
	/// A row of one part of `heads`, turned by `rope` if given.
	pub fn single(heads: usize, head_dim: usize, rope: Option<RopeTables>, offset: usize) -> Self {
		let rotated = rope.is_some();
		Self {
			parts: vec![HeadPart { heads, rotated }],
			head_dim,
			rope,
			interleaved_parts: false,
			offset,
		}
	}

	fn total_heads(&self) -> usize {
		self.parts.iter().map(|p| p.heads).sum()
	}

	/// For each output head: where it starts in an input row, and whether it turns.
	fn sources(&self) -> Vec<(usize, bool)> {
		let hd = self.head_dim;
		let mut sources = Vec::with_capacity(self.total_heads());
		let mut first = 0;
		for (p, part) in self.parts.iter().enumerate() {
			for h in 0..part.heads {
				let column = if self.interleaved_parts {
					(h * self.parts.len() + p) * hd
				} else {
					first + h * hd
				};
				sources.push((column, part.rotated && self.rope.is_some()));
			}
			first += part.heads * hd;
		}
		sources
	}

	fn copy(&self, src: &[f32], dst: &mut [f32], rotated: bool, position: usize, direction: f32) {
		match &self.rope {
			Some(rope) if rotated => rope.turn(src, dst, position, direction),
			_ => dst.copy_from_slice(src),
		}
	}
}

impl SplitHeads {
	/// The heads `[batch, Σ heads, seq, head_dim]` of `x` `[batch, seq, width]`.
	pub(crate) fn split(
		&self,
		x: &[f32],
		batch: usize,
		seq: usize,
		width: usize,
	) -> Result<Vec<f32>> {
		let (heads, hd) = (self.total_heads(), self.head_dim);
		let uneven =
			self.interleaved_parts && self.parts.iter().any(|p| p.heads != self.parts[0].heads);
		if width != heads * hd || uneven || x.len() != batch * seq * width {
			candle_core::bail!(
				"fused-split-heads: width {width} is not {:?} heads of {hd}",
				self.parts
			)
		}
		let sources = self.sources();
		let mut y = vec![0f32; x.len()];
		y.par_chunks_mut(seq * hd).enumerate().for_each(|(bh, y)| {
			let (b, (column, rotated)) = (bh / heads, sources[bh % heads]);
			for (i, dst) in y.chunks_mut(hd).enumerate() {
				let src = &x[(b * seq + i) * width + column..][..hd];
				self.copy(src, dst, rotated, self.offset + i, 1.0);
			}
		});
		Ok(y)
	}

	/// The gradient of [`SplitHeads::split`]'s input, `[batch, seq, width]`, from `g`, the
	/// heads' gradient: the heads put back in their rows, turned back.
	pub(crate) fn merge_gradient(&self, g: &[f32], seq: usize, width: usize) -> Vec<f32> {
		let (heads, hd) = (self.total_heads(), self.head_dim);
		let sources = self.sources();
		let mut dx = vec![0f32; g.len()];
		dx.par_chunks_mut(seq * width).enumerate().for_each(|(b, dx)| {
			for i in 0..seq {
				for (h, &(column, rotated)) in sources.iter().enumerate() {
					let src = &g[((b * heads + h) * seq + i) * hd..][..hd];
					self.copy(
						src,
						&mut dx[i * width + column..][..hd],
						rotated,
						self.offset + i,
						-1.0,
					);
				}
			}
		});
		dx
	}
}

impl CustomOp1 for SplitHeads {
	fn name(&self) -> &'static str {
		"fused-split-heads"
	}

	fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let (batch, seq, width) = layout.shape().dims3()?;
		let y = self.split(contiguous(storage, layout, self.name())?, batch, seq, width)?;
		Ok((CpuStorage::F32(y), Shape::from((batch, self.total_heads(), seq, self.head_dim))))
	}

	fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		let (_, seq, width) = x.dims3()?;
		let dx = read(grad, |g| Ok(self.merge_gradient(g, seq, width)))?;
		Ok(Some(tensor(dx, x.shape())?))
	}
}
