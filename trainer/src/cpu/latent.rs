//! Multi-head latent attention (DeepSeek-V2) from its three projections to the attended
//! context, in one op.
//!
//! The inputs are the query projection `[batch, seq, heads · (nope + rope)]`, the compressed
//! projection `kv_a_proj_with_mqa` `[batch, seq, kv_rank + rope]` (only its last `rope` values,
//! the key's rotary part shared by every head, are read here) and the expanded keys and values
//! `kv_b_proj` `[batch, seq, heads · (nope + value)]`. The op stacks each head's query `[nope |
//! turned rope]`, key `[nope | turned shared rope]` and value, zero-padded to one width, runs
//! [`CausalAttention`] on them and drops the padding from the context `[batch, seq, heads ·
//! value]`. The backward pass turns the rotary parts back and sums the shared key's gradient
//! over the heads.
//!
//! candle's composed ops take some twenty nodes for the same (narrows, rotary ops, concatenations,
//! padding, copies), each of which its backward pass visits with a zero-filled gradient and an
//! add.

use super::{
	attention::{CausalAttention, Stacked},
	contiguous, gradient,
	heads::RopeTables,
	read, Saved,
};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// A latent attention layer's widths.
#[derive(Clone, Copy, Debug)]
pub struct LatentWidths {
	/// Query heads (and expanded key and value heads).
	pub heads: usize,
	/// The compressed keys and values' width.
	pub kv_rank: usize,
	/// Each head's unturned query and key values.
	pub nope: usize,
	/// Each head's turned query and key values.
	pub rope: usize,
	/// Each head's value width.
	pub value: usize,
}

impl LatentWidths {
	/// The one width queries, keys and values are padded to.
	pub fn padded(&self) -> usize {
		(self.nope + self.rope).max(self.value)
	}
}

/// Apply with `q.apply_op3(&latent, &kv, op)` (all three contiguous).
pub struct FusedLatentAttention {
	attention: CausalAttention,
	widths: LatentWidths,
	rope: RopeTables,
	/// Position of the first row.
	offset: usize,
	/// The stacked heads from the forward pass.
	heads: Saved,
}

/// The sizes of one call.
#[derive(Clone, Copy)]
struct Rows {
	batch: usize,
	seq: usize,
}

impl FusedLatentAttention {
	/// The op for `widths`, with softmax `scale` and the rotary `rope`, at positions from
	/// `offset`.
	pub fn new(widths: LatentWidths, scale: f32, rope: RopeTables, offset: usize) -> Result<Self> {
		if rope.rotary_dim != widths.rope {
			candle_core::bail!(
				"fused-latent-attention: the rotary tables turn {} values, the heads have {}",
				rope.rotary_dim,
				widths.rope
			)
		}
		Ok(Self {
			attention: CausalAttention::new(scale, None, None),
			widths,
			rope,
			offset,
			heads: Saved::default(),
		})
	}

	fn stacked(&self, rows: Rows) -> Stacked {
		let heads = self.widths.heads;
		Stacked {
			batch: rows.batch,
			heads,
			kv_heads: heads,
			seq: rows.seq,
			head_dim: self.widths.padded(),
		}
	}

	/// Checks the three inputs' shapes against the widths.
	fn rows(&self, q: &Shape, latent: &Shape, kv: &Shape) -> Result<Rows> {
		let w = self.widths;
		let (batch, seq, q_width) = q.dims3()?;
		let expected = [
			(batch, seq, w.heads * (w.nope + w.rope)),
			(batch, seq, w.kv_rank + w.rope),
			(batch, seq, w.heads * (w.nope + w.value)),
		];
		if [(batch, seq, q_width), latent.dims3()?, kv.dims3()?] != expected {
			candle_core::bail!(
				"fused-latent-attention: q {q:?}, latent {latent:?} and kv {kv:?} do not fit {w:?}"
			)
		}
		Ok(Rows { batch, seq })
	}

	/// Each head's query, key and value, turned and padded: `[batch, 3 · heads, seq, padded]`.
	fn stack(&self, rows: Rows, q: &[f32], latent: &[f32], kv: &[f32]) -> Vec<f32> {
		let w = self.widths;
		let (heads, width) = (w.heads, w.padded());
		let (q_row, latent_row, kv_row) =
			(heads * (w.nope + w.rope), w.kv_rank + w.rope, heads * (w.nope + w.value));
		let mut stacked = vec![0f32; rows.batch * 3 * heads * rows.seq * width];
		stacked.par_chunks_mut(rows.seq * width).enumerate().for_each(|(bh, dst)| {
			let (b, part, h) = (bh / (3 * heads), bh / heads % 3, bh % heads);
			for (i, dst) in dst.chunks_mut(width).enumerate() {
				let (token, position) = (b * rows.seq + i, self.offset + i);
				let kv = &kv[token * kv_row + h * (w.nope + w.value)..][..w.nope + w.value];
				match part {
					0 => {
						let q = &q[token * q_row + h * (w.nope + w.rope)..][..w.nope + w.rope];
						dst[..w.nope].copy_from_slice(&q[..w.nope]);
						self.rope.turn(&q[w.nope..], &mut dst[w.nope..][..w.rope], position, 1.0);
					},
					1 => {
						dst[..w.nope].copy_from_slice(&kv[..w.nope]);
						let shared = &latent[token * latent_row + w.kv_rank..][..w.rope];
						self.rope.turn(shared, &mut dst[w.nope..][..w.rope], position, 1.0);
					},
					_ => dst[..w.value].copy_from_slice(&kv[w.nope..]),
				}
			}
		});
		stacked
	}

	/// The inputs' gradients from the stacked heads' `d_stacked`: the query's, the latent's
	/// and the expanded keys and values'.
	fn unstack(&self, rows: Rows, d_stacked: &[f32]) -> [Vec<f32>; 3] {
		let w = self.widths;
		let (heads, width, seq) = (w.heads, w.padded(), rows.seq);
		let (q_row, latent_row, kv_row) =
			(heads * (w.nope + w.rope), w.kv_rank + w.rope, heads * (w.nope + w.value));
		let tokens = rows.batch * seq;
		let mut dq = vec![0f32; tokens * q_row];
		let mut d_latent = vec![0f32; tokens * latent_row];
		let mut dkv = vec![0f32; tokens * kv_row];
		dq.par_chunks_mut(q_row)
			.zip(d_latent.par_chunks_mut(latent_row))
			.zip(dkv.par_chunks_mut(kv_row))
			.enumerate()
			.for_each(|(token, ((dq, d_latent), dkv))| {
				let (b, i) = (token / seq, token % seq);
				let position = self.offset + i;
				let head = |part: usize, h: usize| {
					&d_stacked[((b * 3 + part) * heads + h) * seq * width + i * width..][..width]
				};
				let shared = &mut d_latent[w.kv_rank..];
				let mut turned_back = vec![0f32; w.rope];
				for h in 0..heads {
					let (dq_head, dk_head, dv_head) = (head(0, h), head(1, h), head(2, h));
					let dq = &mut dq[h * (w.nope + w.rope)..][..w.nope + w.rope];
					dq[..w.nope].copy_from_slice(&dq_head[..w.nope]);
					self.rope.turn(&dq_head[w.nope..][..w.rope], &mut dq[w.nope..], position, -1.0);
					let dkv = &mut dkv[h * (w.nope + w.value)..][..w.nope + w.value];
					dkv[..w.nope].copy_from_slice(&dk_head[..w.nope]);
					dkv[w.nope..].copy_from_slice(&dv_head[..w.value]);
					let dk_turned = &dk_head[w.nope..][..w.rope];
					self.rope.turn(dk_turned, &mut turned_back, position, -1.0);
					shared.iter_mut().zip(&turned_back).for_each(|(s, t)| *s += t);
				}
			});
		[dq, d_latent, dkv]
	}
}

impl CustomOp3 for FusedLatentAttention {
	fn name(&self) -> &'static str {
		"fused-latent-attention"
	}

	fn cpu_fwd(
		&self,
		q: &CpuStorage,
		q_layout: &Layout,
		latent: &CpuStorage,
		latent_layout: &Layout,
		kv: &CpuStorage,
		kv_layout: &Layout,
	) -> Result<(CpuStorage, Shape)> {
		let rows = self.rows(q_layout.shape(), latent_layout.shape(), kv_layout.shape())?;
		let stacked = self.stack(
			rows,
			contiguous(q, q_layout, self.name())?,
			contiguous(latent, latent_layout, self.name())?,
			contiguous(kv, kv_layout, self.name())?,
		);
		let (out, _) = self.attention.forward_stacked(self.stacked(rows), &stacked)?;
		self.heads.put(stacked)?;
		let w = self.widths;
		let shape = Shape::from((rows.batch, rows.seq, w.heads * w.value));
		if w.padded() == w.value {
			return Ok((out, shape));
		}
		// Drop the padding after each head's value.
		let out = out.as_slice::<f32>()?;
		let context: Vec<f32> =
			out.chunks(w.padded()).flat_map(|head| &head[..w.value]).copied().collect();
		Ok((CpuStorage::F32(context), shape))
	}

	fn bwd(
		&self,
		q: &Tensor,
		latent: &Tensor,
		kv: &Tensor,
		_res: &Tensor,
		grad: &Tensor,
	) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
		let rows = self.rows(q.shape(), latent.shape(), kv.shape())?;
		let stacked = self.heads.take()?;
		let w = self.widths;
		let d_stacked = read(grad, |grad| {
			if w.padded() == w.value {
				return self.attention.backward_stacked(self.stacked(rows), &stacked, grad);
			}
			let mut padded = vec![0f32; grad.len() / w.value * w.padded()];
			for (dst, src) in padded.chunks_mut(w.padded()).zip(grad.chunks(w.value)) {
				dst[..w.value].copy_from_slice(src);
			}
			self.attention.backward_stacked(self.stacked(rows), &stacked, &padded)
		})?;
		let [dq, d_latent, dkv] = self.unstack(rows, &d_stacked);
		Ok((gradient(q, dq)?, gradient(latent, d_latent)?, gradient(kv, dkv)?))
	}
}
