//! Multi-head latent attention (DeepSeek-V2; Liu et al., 2024), as transformers' `deepseek_v2`
//! and `deepseek_v3` compute it.
//!
//! Keys and values come from one compressed vector per position: `kv_a_proj_with_mqa` yields
//! the latent `c` and one rotary key `k_pe` shared by every head; `kv_b_proj` expands the
//! normed `c` into each head's unrotated key and its value. Queries come from `q_proj`, or
//! through their own compression `q_b_proj(norm(q_a_proj(x)))`. Each head's query and key are
//! `[nope | rope]`, only the rope part turned. Values may be narrower or wider than keys; both
//! are padded with zeros to one width so the fused attention kernel (which wants one head
//! width) runs unchanged: zeros add nothing to a score, and the padded outputs are dropped.
//!
//! The cache keeps the expanded, turned keys and the padded values of every head.

use super::{
	attention::{append, Heads, LayerCache},
	NormLayer,
};
use crate::{
	cpu::{
		attention::CausalAttention,
		latent::{FusedLatentAttention, LatentWidths},
	},
	linear::{ForwardMode, Linear},
	Result,
};
use candle_core::{Tensor, D};
use candle_nn::ops;

/// How queries are projected.
#[derive(Clone, Debug)]
pub(super) enum Query {
	/// `q_proj` (DeepSeek-V2-Lite).
	Plain(Linear),
	/// `q_b_proj(norm(q_a_proj(x)))`.
	Compressed { down: Linear, norm: NormLayer, up: Linear },
}

/// One layer's latent attention.
#[derive(Clone, Debug)]
pub(super) struct LatentAttention {
	pub(super) query: Query,
	/// `kv_a_proj_with_mqa`: `[kv_rank + rope_dim, hidden]`.
	pub(super) kv_down: Linear,
	/// The norm on the latent's first `kv_rank` values.
	pub(super) kv_norm: NormLayer,
	/// `kv_b_proj`: `[heads · (nope_dim + value_dim), kv_rank]`.
	pub(super) kv_up: Linear,
	/// `o_proj`: `[hidden, heads · value_dim]`.
	pub(super) out: Linear,
	pub(super) widths: LatentWidths,
	pub(super) softmax_scale: f32,
}

/// Every row's projections, before they are split into sequences: queries `[b, s, heads ·
/// (nope + rope)]`, the compressed projection `[b, s, kv_rank + rope]` (its last `rope` values
/// are the shared rotary key) and the expanded keys and values `[b, s, heads · (nope +
/// value)]`.
struct Projected {
	q: Tensor,
	latent: Tensor,
	kv: Tensor,
}

impl Projected {
	fn rows(&self, first: usize, count: usize) -> Result<Self> {
		Ok(Self {
			q: self.q.narrow(1, first, count)?,
			latent: self.latent.narrow(1, first, count)?,
			kv: self.kv.narrow(1, first, count)?,
		})
	}
}

impl LatentAttention {
	/// The linear layers, in model order.
	pub(super) fn linears(&self) -> Vec<&Linear> {
		let mut out = match &self.query {
			Query::Plain(q) => vec![q],
			Query::Compressed { down, up, .. } => vec![down, up],
		};
		out.extend([&self.kv_down, &self.kv_up, &self.out]);
		out
	}

	/// The norms' weights, named.
	pub(super) fn norms(&self) -> Vec<(&'static str, &Tensor)> {
		let mut out = vec![("kv_a_layernorm", &self.kv_norm.weight)];
		if let Query::Compressed { norm, .. } = &self.query {
			out.push(("q_a_layernorm", &norm.weight));
		}
		out
	}

	/// `residual` plus attention over `x` `[batch, seq, hidden]` at positions from `offset`;
	/// `mask` is the composed path's.
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
		let projected = self.project(x, mode)?;
		let context = self.context(heads, &projected, offset, mask, cache, mode)?;
		self.out.forward_onto(residual, &context, None, mode)
	}

	/// [`LatentAttention::forward`] over a serving batch's rows: `parts` are each sequence's
	/// `(offset, rows)`, in row order, each with its cache.
	pub(super) fn forward_ragged(
		&self,
		heads: &Heads,
		residual: &Tensor,
		x: &Tensor,
		parts: &[(usize, usize)],
		caches: Vec<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		// The projections run over every row at once, so row adapters see their own rows.
		let projected = self.project(x, mode)?;
		let fused = mode.kernels.fused_on(x.device());
		let mut contexts = Vec::with_capacity(parts.len());
		let mut first = 0;
		for (&(offset, rows), cache) in parts.iter().zip(caches) {
			let mask =
				if fused { None } else { Some(heads.causal_mask(rows, offset, x.device())?) };
			let part = projected.rows(first, rows)?;
			contexts.push(self.context(heads, &part, offset, mask.as_ref(), Some(cache), mode)?);
			first += rows;
		}
		self.out.forward_onto(residual, &Tensor::cat(&contexts, 1)?, None, mode)
	}

	fn project(&self, x: &Tensor, mode: ForwardMode) -> Result<Projected> {
		let q = match &self.query {
			Query::Plain(q) => q.forward(x, mode)?,
			Query::Compressed { down, norm, up } => {
				up.forward(&norm.forward(&down.forward(x, mode)?, mode)?, mode)?
			},
		};
		let latent = self.kv_down.forward(x, mode)?;
		let c = latent.narrow(D::Minus1, 0, self.widths.kv_rank)?.contiguous()?;
		let kv = self.kv_up.forward(&self.kv_norm.forward(&c, mode)?, mode)?;
		Ok(Projected { q, latent, kv })
	}

	/// The attended context `[batch, seq, heads · value_dim]` of one sequence's projections,
	/// through its cache.
	fn context(
		&self,
		heads: &Heads,
		p: &Projected,
		offset: usize,
		mask: Option<&Tensor>,
		cache: Option<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let d = self.widths;
		// Training on the CPU: one op from the projections to the context.
		if let (true, None, Some(rope)) = (mode.kernels.fused_on(p.q.device()), &cache, &heads.rope)
		{
			let op = FusedLatentAttention::new(d, self.softmax_scale, rope.clone(), offset)?;
			let (latent, kv) = (p.latent.contiguous()?, p.kv.contiguous()?);
			return Ok(p.q.contiguous()?.apply_op3(&latent, &kv, op)?);
		}
		let (b, s, _) = p.q.dims3()?;
		let width = d.padded();
		let pad = |t: Tensor| -> Result<Tensor> {
			let have = t.dim(D::Minus1)?;
			Ok(if have < width { t.pad_with_zeros(D::Minus1, 0, width - have)? } else { t })
		};
		// [b, heads, s, ·]
		let q = p.q.reshape((b, s, d.heads, d.nope + d.rope))?.transpose(1, 2)?;
		let q_rope = heads.rotate(&q.narrow(3, d.nope, d.rope)?.contiguous()?, offset)?;
		let q = pad(Tensor::cat(&[&q.narrow(3, 0, d.nope)?, &q_rope], 3)?)?.contiguous()?;
		let kv = p.kv.reshape((b, s, d.heads, d.nope + d.value))?.transpose(1, 2)?;
		let k_rope = p.latent.narrow(D::Minus1, d.kv_rank, d.rope)?;
		let k_rope = heads
			.rotate(&k_rope.reshape((b, 1, s, d.rope))?.contiguous()?, offset)?
			.broadcast_as((b, d.heads, s, d.rope))?;
		let k = pad(Tensor::cat(&[&kv.narrow(3, 0, d.nope)?, &k_rope], 3)?)?.contiguous()?;
		let v = pad(kv.narrow(3, d.nope, d.value)?)?.contiguous()?;
		let (k, v) = append(cache, k, v)?;
		let context = if mode.kernels.fused_on(q.device()) {
			q.apply_op3(&k, &v, CausalAttention::new(self.softmax_scale, None, None))?
		} else {
			let mut scores = (q.matmul(&k.t()?.contiguous()?)? * f64::from(self.softmax_scale))?;
			if let Some(mask) = mask {
				scores = scores.broadcast_add(mask)?;
			}
			ops::softmax(&scores, D::Minus1)?.matmul(&v)?.transpose(1, 2)?
		};
		let context = context.reshape((b, s, d.heads, width))?;
		let context = if width == d.value { context } else { context.narrow(3, 0, d.value)? };
		Ok(context.reshape((b, s, d.heads * d.value))?)
	}
}
