//! Causal self-attention in one op: `softmax(scale · Q Kᵀ + bias + mask) V`, with grouped-query
//! heads (several query heads read one key/value head), an optional sliding window (a key at
//! `window` or more positions back is masked, as in transformers' Mistral) and ALiBi's
//! per-head linear bias on key positions (BLOOM).
//!
//! The forward pass keeps only each row's log-sum-exp; the backward pass recomputes the
//! probabilities `P` from it, one head at a time, as FlashAttention does (Dao et al., 2022), so
//! no `[batch, heads, seq, seq]` tensor outlives a pass. With `dO` the output's gradient:
//! `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, `dQ = scale · dS K` and
//! `dK = scale · dSᵀ Q`.
//!
//! Queries go in blocks of [`QUERY_BLOCK`] rows, and each block's products span only the keys
//! some row of it can see: for a causal mask that skips most of the upper triangle (a third of
//! the score products at 128 positions), and with a window also the keys left behind it.

use super::{
	blas::{sgemm_serial, Operand},
	contiguous, gradient,
	heads::SplitHeads,
	read, vector, Saved,
};
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// Apply with `q.apply_op3(&k, &v, attention)`: `q` `[batch, heads, seq, head_dim]`, `k` and `v`
/// `[batch, kv_heads, total, head_dim]`, all contiguous. The result is `[batch, seq, heads ·
/// head_dim]`, ready for the output projection.
///
/// Or, built [`CausalAttention::on_projection`], with `qkv.apply_op1(attention)` on the q/k/v
/// projection `[batch, seq, width]` itself: the op splits it into heads (with the rotary turn)
/// as [`SplitHeads`] does and keeps those heads for its backward pass. One input means one
/// gradient for candle to hand back instead of three, and no heads tensor for it to visit.
pub struct CausalAttention {
	scale: f32,
	/// How a projection input splits into query, key and value heads.
	split: Option<SplitHeads>,
	/// A projection input's heads `[batch, heads + 2 · kv_heads, seq, head_dim]`, from the
	/// forward pass.
	split_heads: Saved,
	window: Option<usize>,
	alibi_slopes: Option<Arc<Vec<f32>>>,
	/// Each query row's log-sum-exp, `[batch, heads, seq]`, from the forward pass.
	log_sum_exp: Saved,
}

/// Query rows per block. Smaller blocks skip more of the masked triangle but make smaller,
/// less efficient products.
const QUERY_BLOCK: usize = 32;

/// The sizes of one call.
#[derive(Clone, Copy)]
struct Dims {
	batch: usize,
	heads: usize,
	kv_heads: usize,
	seq: usize,
	total: usize,
	head_dim: usize,
}

impl Dims {
	fn of(q: &Shape, k: &Shape, v: &Shape) -> Result<Self> {
		let (batch, heads, seq, head_dim) = q.dims4()?;
		let (kb, kv_heads, total, khd) = k.dims4()?;
		if (kb, khd) != (batch, head_dim)
			|| k != v || kv_heads == 0
			|| heads % kv_heads != 0
			|| total < seq
		{
			candle_core::bail!("fused-attention: q {q:?}, k {k:?} and v {v:?} do not fit")
		}
		Ok(Self { batch, heads, kv_heads, seq, total, head_dim })
	}

	fn group(&self) -> usize {
		self.heads / self.kv_heads
	}

	/// The views of separate q, k and v tensors.
	fn separate_views(&self) -> [Heads; 3] {
		let (q_head, kv_head) = (self.seq * self.head_dim, self.total * self.head_dim);
		let kv = Heads { first: 0, batch_stride: self.kv_heads * kv_head, head: kv_head };
		[Heads { first: 0, batch_stride: self.heads * q_head, head: q_head }, kv, kv]
	}

	/// The query blocks: each block's first row, its row count, and the first key and the key
	/// count that its rows can see.
	fn blocks(&self, window: Option<usize>) -> impl Iterator<Item = Block> + '_ {
		let window = window.unwrap_or(usize::MAX);
		(0..self.seq).step_by(QUERY_BLOCK).map(move |first_row| {
			let rows = QUERY_BLOCK.min(self.seq - first_row);
			// Query i sits at position total − seq + i and sees keys (position − window, position].
			let first_query = self.total - self.seq + first_row;
			let first_key = (first_query + 1).saturating_sub(window);
			Block { first_row, rows, first_key, keys: first_query + rows - first_key }
		})
	}
}

/// Where each head of q, k or v lies in its buffer: head `h` of batch `b` is
/// `[first + b · batch_stride + h · head..][..head]`.
#[derive(Clone, Copy)]
struct Heads {
	first: usize,
	batch_stride: usize,
	head: usize,
}

impl Heads {
	fn range(&self, batch: usize, head: usize) -> std::ops::Range<usize> {
		let start = self.first + batch * self.batch_stride + head * self.head;
		start..start + self.head
	}
}

/// q, k and v heads stacked in one buffer `[batch, heads + 2 · kv_heads, seq, head_dim]`: what
/// a projection input is split into, or what [`super::latent`] builds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stacked {
	pub batch: usize,
	pub heads: usize,
	pub kv_heads: usize,
	pub seq: usize,
	pub head_dim: usize,
}

impl Stacked {
	fn dims_and_views(self) -> (Dims, [Heads; 3]) {
		let Self { batch, heads, kv_heads, seq, head_dim } = self;
		let all = heads + 2 * kv_heads;
		let head = seq * head_dim;
		let view = |first: usize| Heads { first: first * head, batch_stride: all * head, head };
		let d = Dims { batch, heads, kv_heads, seq, total: seq, head_dim };
		(d, [view(0), view(heads), view(heads + kv_heads)])
	}
}

/// Rows `first_row..first_row + rows` of the queries and the keys `first_key..first_key + keys`
/// they can see.
#[derive(Clone, Copy)]
struct Block {
	first_row: usize,
	rows: usize,
	first_key: usize,
	keys: usize,
}

impl CausalAttention {
	/// Attention scaled by `scale` (usually `1/√head_dim`), with an optional window and ALiBi
	/// slopes (one per head).
	pub fn new(scale: f32, window: Option<usize>, alibi_slopes: Option<Arc<Vec<f32>>>) -> Self {
		Self {
			scale,
			window,
			alibi_slopes,
			split: None,
			split_heads: Saved::default(),
			log_sum_exp: Saved::default(),
		}
	}

	/// The same attention over a q/k/v projection that `split` turns into query, key and value
	/// heads (its three parts, in that order).
	pub fn on_projection(self, split: SplitHeads) -> Result<Self> {
		let [q, k, v] = split.parts.as_slice() else {
			candle_core::bail!(
				"fused-attention: a projection splits into q, k and v, not {:?}",
				split.parts
			)
		};
		if k.heads != v.heads || k.heads == 0 || q.heads % k.heads != 0 {
			candle_core::bail!(
				"fused-attention: {} query heads cannot share {} key and {} value heads",
				q.heads,
				k.heads,
				v.heads
			)
		}
		Ok(Self { split: Some(split), ..self })
	}

	/// The split and the stacked heads it makes of a projection input of `shape`.
	fn projection_dims(&self, shape: &Shape) -> Result<(&SplitHeads, Stacked)> {
		let Some(split) = &self.split else {
			candle_core::bail!("fused-attention: built for separate q, k and v")
		};
		let (batch, seq, _) = shape.dims3()?;
		let (heads, kv_heads, head_dim) =
			(split.parts[0].heads, split.parts[1].heads, split.head_dim);
		Ok((split, Stacked { batch, heads, kv_heads, seq, head_dim }))
	}

	/// The attention `[batch, seq, heads · head_dim]` over the stacked heads `qkv`.
	pub(crate) fn forward_stacked(&self, s: Stacked, qkv: &[f32]) -> Result<(CpuStorage, Shape)> {
		let (d, views) = s.dims_and_views();
		self.forward(d, qkv, qkv, qkv, views)
	}

	/// The gradient of the stacked heads `qkv` from the output's gradient `grad`.
	pub(crate) fn backward_stacked(
		&self,
		s: Stacked,
		qkv: &[f32],
		grad: &[f32],
	) -> Result<Vec<f32>> {
		let (d, views) = s.dims_and_views();
		if qkv.len() != d.batch * (d.heads + 2 * d.kv_heads) * d.seq * d.head_dim {
			candle_core::bail!("fused-attention: the backward pass ran without its forward pass")
		}
		let mut d_qkv = vec![0f32; qkv.len()];
		let head = d.seq * d.head_dim;
		let mut work: Vec<GroupGradients> = Vec::with_capacity(d.batch * d.kv_heads);
		for (b, batch) in d_qkv.chunks_mut((d.heads + 2 * d.kv_heads) * head).enumerate() {
			let (dq, rest) = batch.split_at_mut(d.heads * head);
			let (dk, dv) = rest.split_at_mut(d.kv_heads * head);
			let groups =
				dq.chunks_mut(d.group() * head).zip(dk.chunks_mut(head).zip(dv.chunks_mut(head)));
			work.extend(
				groups.enumerate().map(|(g, (dq, (dk, dv)))| (b * d.kv_heads + g, dq, dk, dv)),
			);
		}
		self.backward(d, qkv, qkv, qkv, views, grad, work)?;
		Ok(d_qkv)
	}

	/// `scale · q kᵀ` plus bias and mask for one block, `[rows, keys]`, into `scores`; `q` and
	/// `k` are the whole head's.
	fn scores(&self, d: Dims, head: usize, block: Block, q: &[f32], k: &[f32], scores: &mut [f32]) {
		let hd = d.head_dim;
		let Block { first_row, rows, first_key, keys } = block;
		let (q, k) = (&q[first_row * hd..], &k[first_key * hd..]);
		sgemm_serial(
			rows,
			keys,
			hd,
			self.scale,
			Operand::plain(q, hd),
			Operand::transposed(k, hd),
			0.0,
			scores,
			keys,
		);
		let slope = self.alibi_slopes.as_ref().map(|s| s[head]);
		let window = self.window.unwrap_or(usize::MAX);
		for (i, row) in scores[..rows * keys].chunks_mut(keys).enumerate() {
			let query = d.total - d.seq + first_row + i;
			for (j, score) in row.iter_mut().enumerate() {
				let key = first_key + j;
				if key > query || query - key >= window {
					*score = f32::NEG_INFINITY;
				} else if let Some(slope) = slope {
					*score += slope * key as f32;
				}
			}
		}
	}
}

impl CausalAttention {
	/// The forward pass over `q`, `k` and `v` (one buffer or three) viewed through `views`.
	fn forward(
		&self,
		d: Dims,
		q: &[f32],
		k: &[f32],
		v: &[f32],
		[q_at, k_at, v_at]: [Heads; 3],
	) -> Result<(CpuStorage, Shape)> {
		let (seq, total, hd, heads) = (d.seq, d.total, d.head_dim, d.heads);
		let width = heads * hd;
		let mut out = vec![0f32; d.batch * seq * width];
		let mut lse = vec![0f32; d.batch * heads * seq];
		out.par_chunks_mut(seq * width).zip(lse.par_chunks_mut(heads * seq)).enumerate().for_each(
			|(b, (out, lse))| {
				let mut probs = vec![0f32; QUERY_BLOCK * total];
				for h in 0..heads {
					let g = h / d.group();
					let q_h = &q[q_at.range(b, h)];
					let (k_g, v_g) = (&k[k_at.range(b, g)], &v[v_at.range(b, g)]);
					for block in d.blocks(self.window) {
						let probs = &mut probs[..block.rows * block.keys];
						self.scores(d, h, block, q_h, k_g, probs);
						for (row, lse) in probs
							.chunks_mut(block.keys)
							.zip(&mut lse[h * seq + block.first_row..][..block.rows])
						{
							let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
							let sum = vector::exp_shifted(row, max);
							let inverse = 1.0 / sum;
							row.iter_mut().for_each(|p| *p *= inverse);
							*lse = max + sum.ln();
						}
						let out = &mut out[block.first_row * width + h * hd..];
						let v_keys = Operand::plain(&v_g[block.first_key * hd..], hd);
						sgemm_serial(
							block.rows,
							hd,
							block.keys,
							1.0,
							Operand::plain(probs, block.keys),
							v_keys,
							0.0,
							out,
							width,
						);
					}
				}
			},
		);
		self.log_sum_exp.put(lse)?;
		Ok((CpuStorage::F32(out), Shape::from((d.batch, seq, width))))
	}

	/// The backward pass: for each (batch, key/value head) in `work`, the gradients of its
	/// query heads, its key and its value, written in place.
	#[allow(clippy::too_many_arguments)]
	fn backward(
		&self,
		d: Dims,
		q: &[f32],
		k: &[f32],
		v: &[f32],
		[q_at, k_at, v_at]: [Heads; 3],
		grad: &[f32],
		work: Vec<GroupGradients>,
	) -> Result<()> {
		let (seq, total, hd, heads, group) = (d.seq, d.total, d.head_dim, d.heads, d.group());
		let width = heads * hd;
		self.log_sum_exp.read(|lse| {
			work.into_par_iter().for_each(|(bg, dq, dk, dv)| {
				let (b, g) = (bg / d.kv_heads, bg % d.kv_heads);
				let (k_g, v_g) = (&k[k_at.range(b, g)], &v[v_at.range(b, g)]);
				let mut probs = vec![0f32; QUERY_BLOCK * total];
				let mut d_scores = vec![0f32; QUERY_BLOCK * total];
				for (member, dq_h) in dq.chunks_mut(seq * hd).enumerate() {
					let h = g * group + member;
					let q_h = &q[q_at.range(b, h)];
					let lse_h = &lse[(b * heads + h) * seq..][..seq];
					for block in d.blocks(self.window) {
						let Block { first_row, rows, first_key, keys } = block;
						let (probs, d_scores) =
							(&mut probs[..rows * keys], &mut d_scores[..rows * keys]);
						self.scores(d, h, block, q_h, k_g, probs);
						for (row, lse) in probs.chunks_mut(keys).zip(&lse_h[first_row..][..rows]) {
							vector::exp_shifted(row, *lse);
						}
						let d_out =
							Operand::plain(&grad[(b * seq + first_row) * width + h * hd..], width);
						let (k_keys, v_keys) = (
							&k_g[first_key * hd..][..keys * hd],
							&v_g[first_key * hd..][..keys * hd],
						);
						let (dk_keys, dv_keys) = (
							&mut dk[first_key * hd..][..keys * hd],
							&mut dv[first_key * hd..][..keys * hd],
						);
						sgemm_serial(
							keys,
							hd,
							rows,
							1.0,
							Operand::transposed(probs, keys),
							d_out,
							1.0,
							dv_keys,
							hd,
						);
						sgemm_serial(
							rows,
							keys,
							hd,
							1.0,
							d_out,
							Operand::transposed(v_keys, hd),
							0.0,
							d_scores,
							keys,
						);
						for (ds, p) in d_scores.chunks_mut(keys).zip(probs.chunks(keys)) {
							let dot: f32 = ds.iter().zip(p.iter()).map(|(a, b)| a * b).sum();
							ds.iter_mut().zip(p.iter()).for_each(|(ds, p)| *ds = p * (*ds - dot));
						}
						let q_rows = Operand::plain(&q_h[first_row * hd..], hd);
						sgemm_serial(
							rows,
							hd,
							keys,
							self.scale,
							Operand::plain(d_scores, keys),
							Operand::plain(k_keys, hd),
							0.0,
							&mut dq_h[first_row * hd..],
							hd,
						);
						sgemm_serial(
							keys,
							hd,
							rows,
							self.scale,
							Operand::transposed(d_scores, keys),
							q_rows,
							1.0,
							dk_keys,
							hd,
						);
					}
				}
			});
			Ok(())
		})
	}
}

/// One task of the backward pass: the index `batch · kv_heads + kv_head`, then the gradients of
/// that key/value head's query heads (`group` of them, contiguous), of its key and of its value.
type GroupGradients<'a> = (usize, &'a mut [f32], &'a mut [f32], &'a mut [f32]);

impl CustomOp3 for CausalAttention {
	fn name(&self) -> &'static str {
		"fused-attention"
	}

	fn cpu_fwd(
		&self,
		q: &CpuStorage,
		q_layout: &Layout,
		k: &CpuStorage,
		k_layout: &Layout,
		v: &CpuStorage,
		v_layout: &Layout,
	) -> Result<(CpuStorage, Shape)> {
		let d = Dims::of(q_layout.shape(), k_layout.shape(), v_layout.shape())?;
		let (q, k, v) = (
			contiguous(q, q_layout, "fused-attention")?,
			contiguous(k, k_layout, "fused-attention")?,
			contiguous(v, v_layout, "fused-attention")?,
		);
		self.forward(d, q, k, v, d.separate_views())
	}

	fn bwd(
		&self,
		q: &Tensor,
		k: &Tensor,
		v: &Tensor,
		_res: &Tensor,
		grad: &Tensor,
	) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
		let d = Dims::of(q.shape(), k.shape(), v.shape())?;
		let mut dq = vec![0f32; q.elem_count()];
		let mut dk = vec![0f32; k.elem_count()];
		let mut dv = vec![0f32; v.elem_count()];
		let (kv_head, group) = (d.total * d.head_dim, d.group() * d.seq * d.head_dim);
		let work: Vec<GroupGradients> = dq
			.chunks_mut(group)
			.zip(dk.chunks_mut(kv_head).zip(dv.chunks_mut(kv_head)))
			.enumerate()
			.map(|(bg, (dq, (dk, dv)))| (bg, dq, dk, dv))
			.collect();
		read(q, |q| {
			read(k, |k| {
				read(v, |v| {
					read(grad, |grad| self.backward(d, q, k, v, d.separate_views(), grad, work))
				})
			})
		})?;
		Ok((gradient(q, dq)?, gradient(k, dk)?, gradient(v, dv)?))
	}
}

impl CustomOp1 for CausalAttention {
	fn name(&self) -> &'static str {
		"fused-attention"
	}

	fn cpu_fwd(&self, projection: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let (split, stacked) = self.projection_dims(layout.shape())?;
		let width = layout.shape().dims3()?.2;
		let qkv = split.split(
			contiguous(projection, layout, "fused-attention")?,
			stacked.batch,
			stacked.seq,
			width,
		)?;
		let out = self.forward_stacked(stacked, &qkv)?;
		self.split_heads.put(qkv)?;
		Ok(out)
	}

	fn bwd(&self, projection: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		let (split, stacked) = self.projection_dims(projection.shape())?;
		let qkv = self.split_heads.take()?;
		let d_qkv = read(grad, |grad| self.backward_stacked(stacked, &qkv, grad))?;
		gradient(projection, split.merge_gradient(&d_qkv, stacked.seq, projection.dims3()?.2))
	}
}
