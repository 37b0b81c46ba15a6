//! Causal self-attention, with its three ways to run:
//!
//! - [`Attention::fused_projection`]: training on the CPU. One fused op takes the q/k/v
//!   projection, splits it into heads, turns them and attends, so the projection has a single
//!   consumer and a single gradient.
//! - [`Attention::fused_heads`]: the CPU kernels on heads split first, for generation with a
//!   key-value cache and for Qwen3's per-head q/k norms; [`Attention::forward_ragged`] runs it
//!   per sequence of a serving batch.
//! - [`Attention::composed`]: candle's own ops, each with a backward, on any device.

use super::{NormLayer, RopeTables};
use crate::{
	cpu::{
		attention::CausalAttention,
		heads::{HeadPart, SplitHeads},
	},
	linear::{ForwardMode, Linear, LinearGroup},
	Result,
};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{ops, rotary_emb};
use std::sync::Arc;

/// A layer's cached keys and values `[batch, kv_heads, positions, head_dim]`.
pub(super) type LayerCache = Option<(Tensor, Tensor)>;

/// What every attention layer of a model shares: the head layout and the position encoding.
#[derive(Clone, Debug)]
pub(super) struct Heads {
	pub(super) head_dim: usize,
	pub(super) query_heads: usize,
	pub(super) kv_heads: usize,
	/// BLOOM's fused projection yields q, k and v side by side within each head.
	pub(super) per_head_qkv: bool,
	/// Mistral's attention window.
	pub(super) sliding_window: Option<usize>,
	/// `cos` and `sin`, `[max_positions, rotary_dim / 2]`, for rotary families.
	pub(super) rope: Option<RopeTables>,
	/// ALiBi's slope for each head, for BLOOM.
	pub(super) alibi_slopes: Option<Arc<Vec<f32>>>,
}

impl Heads {
	fn scale(&self) -> f32 {
		(1.0 / (self.head_dim as f64).sqrt()) as f32
	}

	fn kernel(&self) -> CausalAttention {
		CausalAttention::new(self.scale(), self.sliding_window, self.alibi_slopes.clone())
	}

	/// The additive causal mask `[seq, offset + seq]` of the composed path: −∞ above the
	/// diagonal and, with a sliding window, at or beyond `window` positions back.
	pub(super) fn causal_mask(&self, seq: usize, offset: usize, device: &Device) -> Result<Tensor> {
		let total = offset + seq;
		let window = self.sliding_window.unwrap_or(usize::MAX);
		let values: Vec<f32> = (0..seq)
			.flat_map(|i| {
				let query = offset + i;
				(0..total).map(move |key| {
					if key > query || query - key >= window {
						f32::NEG_INFINITY
					} else {
						0.0
					}
				})
			})
			.collect();
		Ok(Tensor::from_vec(values, (seq, total), device)?)
	}

	/// Rotary embedding of `[batch, heads, seq, head_dim]` at positions from `offset`, with
	/// candle's composed ops; a no-op for families without it.
	pub(super) fn rotate(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
		let Some(RopeTables { cos, sin, rotary_dim, interleaved }) = &self.rope else {
			return Ok(x.clone());
		};
		let seq = x.dim(2)?;
		let half = rotary_dim / 2;
		let rows = |table: &[f32]| {
			Tensor::from_slice(
				&table[offset * half..(offset + seq) * half],
				(seq, half),
				x.device(),
			)
		};
		let (cos, sin) = (rows(cos)?, rows(sin)?);
		let head_dim = x.dim(3)?;
		let rotated = x.narrow(3, 0, *rotary_dim)?.contiguous()?;
		let rotated = if *interleaved {
			rotary_emb::rope_i_slow(&rotated, &cos, &sin)?
		} else {
			rotary_emb::rope_slow(&rotated, &cos, &sin)?
		};
		if *rotary_dim == head_dim {
			Ok(rotated)
		} else {
			let pass = x.narrow(3, *rotary_dim, head_dim - rotary_dim)?;
			Ok(Tensor::cat(&[&rotated, &pass], 3)?)
		}
	}
}

/// One layer's attention: the q/k/v projection, optional per-head norms, the output projection.
#[derive(Clone, Debug)]
pub(super) struct Attention {
	/// q, k and v as one product (separate layers stacked, or the family's fused one).
	pub(super) qkv: LinearGroup,
	pub(super) out: Linear,
	/// Qwen3's RMSNorm on each head's queries and keys.
	pub(super) qk_norm: Option<(NormLayer, NormLayer)>,
}

impl Attention {
	/// `residual` plus attention over `x` `[batch, seq, hidden]`, at positions from `offset`.
	/// `mask` is the composed path's (see [`Heads::causal_mask`]).
	#[allow(clippy::too_many_arguments)]
	pub(super) fn forward(
		&self,
		heads: &Heads,
		residual: &Tensor,
		x: &Tensor,
		offset: usize,
		mask: Option<&Tensor>,
		cache: Option<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let projected = self.qkv.forward(x, mode)?;
		if mode.kernels.fused_on(x.device()) && cache.is_none() && self.qk_norm.is_none() {
			return self.fused_projection(heads, residual, &projected, offset, mode);
		}
		let context = self.context(heads, &projected, offset, mask, cache, mode)?;
		self.out.forward_onto(residual, &context, None, mode)
	}

	/// [`Attention::forward`] over a ragged batch: `x` `[1, rows, hidden]` holds consecutive
	/// runs of rows, one per sequence, each `(offset, rows)` of `parts` continuing its own
	/// cache. The projections run once over every row; each sequence attends to its own keys.
	pub(super) fn forward_ragged(
		&self,
		heads: &Heads,
		residual: &Tensor,
		x: &Tensor,
		parts: &[(usize, usize)],
		caches: Vec<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let projected = self.qkv.forward(x, mode)?;
		let fused = mode.kernels.fused_on(x.device());
		let mut contexts = Vec::with_capacity(parts.len());
		let mut first = 0;
		for (&(offset, rows), cache) in parts.iter().zip(caches) {
			let part = projected.narrow(1, first, rows)?;
			let mask =
				if fused { None } else { Some(heads.causal_mask(rows, offset, x.device())?) };
			contexts.push(self.context(heads, &part, offset, mask.as_ref(), Some(cache), mode)?);
			first += rows;
		}
		self.out.forward_onto(residual, &Tensor::cat(&contexts, 1)?, None, mode)
	}

	/// The attended context `[batch, seq, heads · head_dim]` of a projection, through the
	/// cache.
	fn context(
		&self,
		heads: &Heads,
		projected: &Tensor,
		offset: usize,
		mask: Option<&Tensor>,
		cache: Option<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		if mode.kernels.fused_on(projected.device()) {
			self.fused_heads(heads, projected, offset, cache, mode)
		} else {
			self.composed(heads, projected, offset, mask, cache, mode)
		}
	}

	/// Training on the CPU: one op from the projection to the attended context.
	fn fused_projection(
		&self,
		heads: &Heads,
		residual: &Tensor,
		projected: &Tensor,
		offset: usize,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let split = SplitHeads {
			parts: vec![
				HeadPart { heads: heads.query_heads, rotated: true },
				HeadPart { heads: heads.kv_heads, rotated: true },
				HeadPart { heads: heads.kv_heads, rotated: false },
			],
			head_dim: heads.head_dim,
			rope: heads.rope.clone(),
			interleaved_parts: heads.per_head_qkv,
			offset,
		};
		let op = heads.kernel().on_projection(split)?;
		self.out.forward_onto(residual, &projected.contiguous()?.apply_op1(op)?, None, mode)
	}

	/// The CPU kernels on heads split first, with the cache and per-head norms.
	fn fused_heads(
		&self,
		heads: &Heads,
		projected: &Tensor,
		offset: usize,
		cache: Option<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let (b, s, _) = projected.dims3()?;
		let (hd, nh, nkv) = (heads.head_dim, heads.query_heads, heads.kv_heads);
		let (mut q, mut k, v) = split_qkv(heads, projected)?;
		// Normalising over the last dimension commutes with splitting the heads.
		if let Some((q_norm, k_norm)) = &self.qk_norm {
			q = q_norm.forward(&q.reshape((b, s, nh, hd))?, mode)?.reshape((b, s, nh * hd))?;
			k = k_norm.forward(&k.reshape((b, s, nkv, hd))?, mode)?.reshape((b, s, nkv * hd))?;
		}
		let split = |t: Tensor, count: usize, rope: Option<RopeTables>| -> Result<Tensor> {
			Ok(t.contiguous()?.apply_op1(SplitHeads::single(count, hd, rope, offset))?)
		};
		let q = split(q, nh, heads.rope.clone())?;
		let (k, v) = append(cache, split(k, nkv, heads.rope.clone())?, split(v, nkv, None)?)?;
		Ok(q.apply_op3(&k, &v, heads.kernel())?)
	}

	/// candle's composed ops, on any device.
	fn composed(
		&self,
		heads: &Heads,
		projected: &Tensor,
		offset: usize,
		mask: Option<&Tensor>,
		cache: Option<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let (b, s, _) = projected.dims3()?;
		let (hd, nh, nkv) = (heads.head_dim, heads.query_heads, heads.kv_heads);
		let (q, k, v) = split_qkv(heads, projected)?;
		let to_heads = |t: Tensor, n: usize| -> Result<Tensor> {
			Ok(t.reshape((b, s, n, hd))?.transpose(1, 2)?.contiguous()?)
		};
		let (mut q, mut k, v) = (to_heads(q, nh)?, to_heads(k, nkv)?, to_heads(v, nkv)?);
		if let Some((q_norm, k_norm)) = &self.qk_norm {
			q = q_norm.forward(&q, mode)?;
			k = k_norm.forward(&k, mode)?;
		}
		let q = heads.rotate(&q, offset)?;
		let (k, v) = append(cache, heads.rotate(&k, offset)?, v)?;
		let total = k.dim(2)?;
		let repeat = |t: Tensor| -> Result<Tensor> {
			if nh == nkv {
				return Ok(t);
			}
			Ok(t.unsqueeze(2)?
				.broadcast_as((b, nkv, nh / nkv, total, hd))?
				.reshape((b, nh, total, hd))?)
		};
		let (k, v) = (repeat(k)?, repeat(v)?);
		let mut scores = (q.matmul(&k.t()?.contiguous()?)? * f64::from(heads.scale()))?;
		if let Some(slopes) = &heads.alibi_slopes {
			let slopes = Tensor::from_slice(slopes, (1, nh, 1, 1), q.device())?;
			let key_positions =
				Tensor::arange(0u32, total as u32, q.device())?.to_dtype(DType::F32)?;
			let bias = slopes.broadcast_mul(&key_positions.reshape((1, 1, 1, total))?)?;
			scores = scores.broadcast_add(&bias)?;
		}
		if let Some(mask) = mask {
			scores = scores.broadcast_add(mask)?;
		}
		let probs = ops::softmax(&scores, D::Minus1)?;
		Ok(probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, nh * hd))?)
	}
}

/// q, k and v `[batch, seq, heads · head_dim]` out of the projection.
fn split_qkv(heads: &Heads, projected: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
	let (b, s, _) = projected.dims3()?;
	let (hd, nh, nkv) = (heads.head_dim, heads.query_heads, heads.kv_heads);
	if heads.per_head_qkv {
		let per_head = projected.reshape((b, s, nh, 3, hd))?;
		let part =
			|i| -> Result<Tensor> { Ok(per_head.narrow(3, i, 1)?.reshape((b, s, nh * hd))?) };
		return Ok((part(0)?, part(1)?, part(2)?));
	}
	let (qw, kvw) = (nh * hd, nkv * hd);
	Ok((
		projected.narrow(2, 0, qw)?,
		projected.narrow(2, qw, kvw)?,
		projected.narrow(2, qw + kvw, kvw)?,
	))
}

/// The keys and values to attend over: `k` and `v` after the cached ones, which they join.
pub(super) fn append(
	cache: Option<&mut LayerCache>,
	k: Tensor,
	v: Tensor,
) -> Result<(Tensor, Tensor)> {
	let Some(slot) = cache else { return Ok((k, v)) };
	let (k, v) = match slot.take() {
		Some((past_k, past_v)) => {
			(Tensor::cat(&[&past_k, &k], 2)?, Tensor::cat(&[&past_v, &v], 2)?)
		},
		None => (k, v),
	};
	*slot = Some((k.clone(), v.clone()));
	Ok((k, v))
}
