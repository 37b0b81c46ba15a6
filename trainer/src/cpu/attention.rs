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

use super::{
	blas::{sgemm_serial, Operand},
	contiguous, gradient, read, vector,
};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Apply with `q.apply_op3(&k, &v, attention)`: `q` `[batch, heads, seq, head_dim]`, `k` and `v`
/// `[batch, kv_heads, total, head_dim]`, all contiguous. The result is `[batch, seq, heads ·
/// head_dim]`, ready for the output projection.
pub struct CausalAttention {
	scale: f32,
	window: Option<usize>,
	alibi_slopes: Option<Arc<Vec<f32>>>,
	/// Each query row's log-sum-exp, `[batch, heads, seq]`, from the forward pass.
	log_sum_exp: Mutex<Vec<f32>>,
}

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
		if (kb, khd) != (batch, head_dim) || k != v || kv_heads == 0 || heads % kv_heads != 0 || total < seq {
			candle_core::bail!("fused-attention: q {q:?}, k {k:?} and v {v:?} do not fit")
		}
		Ok(Self { batch, heads, kv_heads, seq, total, head_dim })
	}

	fn group(&self) -> usize {
		self.heads / self.kv_heads
	}
}

impl CausalAttention {
	/// Attention scaled by `scale` (usually `1/√head_dim`), with an optional window and ALiBi
	/// slopes (one per head).
	pub fn new(scale: f32, window: Option<usize>, alibi_slopes: Option<Arc<Vec<f32>>>) -> Self {
		Self { scale, window, alibi_slopes, log_sum_exp: Mutex::new(Vec::new()) }
	}

	/// `scale · q kᵀ` plus bias and mask, `[seq, total]`, into `scores`.
	fn scores(&self, d: Dims, head: usize, q: &[f32], k: &[f32], scores: &mut [f32]) {
		let (seq, total, hd) = (d.seq, d.total, d.head_dim);
		sgemm_serial(seq, total, hd, self.scale, Operand::plain(q, hd), Operand::transposed(k, hd), 0.0, scores, total);
		let slope = self.alibi_slopes.as_ref().map(|s| s[head]);
		let window = self.window.unwrap_or(usize::MAX);
		for (i, row) in scores.chunks_mut(total).enumerate() {
			let query = total - seq + i;
			for (key, score) in row.iter_mut().enumerate() {
				if key > query || query - key >= window {
					*score = f32::NEG_INFINITY;
				} else if let Some(slope) = slope {
					*score += slope * key as f32;
				}
			}
		}
	}
}

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
		let (q, k, v) = (contiguous(q, q_layout, self.name())?, contiguous(k, k_layout, self.name())?, contiguous(v, v_layout, self.name())?);
		let (seq, total, hd, heads) = (d.seq, d.total, d.head_dim, d.heads);
		let width = heads * hd;
		let mut out = vec![0f32; d.batch * seq * width];
		let mut lse = vec![0f32; d.batch * heads * seq];
		out.par_chunks_mut(seq * width).zip(lse.par_chunks_mut(heads * seq)).enumerate().for_each(|(b, (out, lse))| {
			let mut probs = vec![0f32; seq * total];
			for h in 0..heads {
				let g = b * d.kv_heads + h / d.group();
				let q_h = &q[(b * heads + h) * seq * hd..][..seq * hd];
				self.scores(d, h, q_h, &k[g * total * hd..][..total * hd], &mut probs);
				for (row, lse) in probs.chunks_mut(total).zip(&mut lse[h * seq..][..seq]) {
					let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
					let sum = vector::exp_shifted(row, max);
					let inverse = 1.0 / sum;
					row.iter_mut().for_each(|p| *p *= inverse);
					*lse = max + sum.ln();
				}
				let v_g = &v[g * total * hd..][..total * hd];
				sgemm_serial(seq, hd, total, 1.0, Operand::plain(&probs, total), Operand::plain(v_g, hd), 0.0, &mut out[h * hd..], width);
			}
		});
		*self.log_sum_exp.lock().map_err(|_| candle_core::Error::Msg("fused-attention: poisoned lock".into()))? = lse;
		Ok((CpuStorage::F32(out), Shape::from((d.batch, seq, width))))
	}

	fn bwd(&self, q: &Tensor, k: &Tensor, v: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
		let d = Dims::of(q.shape(), k.shape(), v.shape())?;
		let (seq, total, hd, heads, group) = (d.seq, d.total, d.head_dim, d.heads, d.group());
		let width = heads * hd;
		let lse = self.log_sum_exp.lock().map_err(|_| candle_core::Error::Msg("fused-attention: poisoned lock".into()))?;
		let mut dq = vec![0f32; q.elem_count()];
		let mut dk = vec![0f32; k.elem_count()];
		let mut dv = vec![0f32; v.elem_count()];
		read(q, |q| {
			read(k, |k| {
				read(v, |v| {
					read(grad, |grad| {
						dq.par_chunks_mut(group * seq * hd)
							.zip(dk.par_chunks_mut(total * hd).zip(dv.par_chunks_mut(total * hd)))
							.enumerate()
							.for_each(|(bg, (dq, (dk, dv)))| {
								let b = bg / d.kv_heads;
								let (k_g, v_g) = (&k[bg * total * hd..][..total * hd], &v[bg * total * hd..][..total * hd]);
								let mut probs = vec![0f32; seq * total];
								let mut d_scores = vec![0f32; seq * total];
								for (member, dq_h) in dq.chunks_mut(seq * hd).enumerate() {
									let h = (bg % d.kv_heads) * group + member;
									let q_h = &q[(b * heads + h) * seq * hd..][..seq * hd];
									let lse_h = &lse[(b * heads + h) * seq..][..seq];
									self.scores(d, h, q_h, k_g, &mut probs);
									for (row, lse) in probs.chunks_mut(total).zip(lse_h) {
										vector::exp_shifted(row, *lse);
									}
									let d_out = Operand::plain(&grad[b * seq * width + h * hd..], width);
									sgemm_serial(total, hd, seq, 1.0, Operand::transposed(&probs, total), d_out, 1.0, dv, hd);
									sgemm_serial(seq, total, hd, 1.0, d_out, Operand::transposed(v_g, hd), 0.0, &mut d_scores, total);
									for (ds, p) in d_scores.chunks_mut(total).zip(probs.chunks(total)) {
										let dot: f32 = ds.iter().zip(p).map(|(a, b)| a * b).sum();
										ds.iter_mut().zip(p).for_each(|(ds, p)| *ds = p * (*ds - dot));
									}
									sgemm_serial(seq, hd, total, self.scale, Operand::plain(&d_scores, total), Operand::plain(k_g, hd), 0.0, dq_h, hd);
									sgemm_serial(total, hd, seq, self.scale, Operand::transposed(&d_scores, total), Operand::plain(q_h, hd), 1.0, dk, hd);
								}
							});
						Ok(())
					})
				})
			})
		})?;
		Ok((gradient(q, dq)?, gradient(k, dk)?, gradient(v, dv)?))
	}
}
