//! A linear layer's frozen product and LoRA branch in one op:
//! `y = x Wᵀ + b + s · (m ⊙ x) Aᵀ Bᵀ`, with `m` the dropout mask and `s` the adapter's scale.
//!
//! Backward, with `g = ∂L/∂y`: `dx = g W + s · m ⊙ (g B) A`, `dB = s · gᵀ (m ⊙ x) Aᵀ` and
//! `dA = s · (g B)ᵀ (m ⊙ x)`. The frozen `W` and `b` get no gradient, which saves the `xᵀ g`
//! product candle's matmul would compute; a quantised `W` is dequantised for each pass only.

use super::{
	blas::{sgemm, Operand},
	contiguous, gradient, read,
};
use crate::linear::FrozenWeight;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};

/// Apply to a contiguous `x` `[…, in]` (every leading position is a row, so callers need no
/// reshape, which would be one more node for the backward pass to visit): `x.apply_op1(op)`
/// without an adapter,
/// `x.apply_op3(&a, &b, op)` with one (`a` `[r, in]`, `b` `[out, r]`).
pub struct FusedLinear {
	/// The frozen `W` `[out, in]`.
	pub weight: FrozenWeight,
	/// The frozen `b` `[out]`.
	pub bias: Option<Tensor>,
	/// The adapter's `α/r` (or `α/√r`).
	pub scale: f32,
	/// Dropout's mask on the adapter's input `[rows, in]`, already divided by the keep rate.
	pub dropout_mask: Option<Vec<f32>>,
}

impl FusedLinear {
	fn with_weight<R>(&self, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
		match &self.weight {
			FrozenWeight::Dense(w) => read(w, f),
			FrozenWeight::Quantized(q, _) => f(&q.dequantize()),
		}
	}

	fn dims(&self, x: &Shape) -> Result<(usize, usize, usize)> {
		let (out_dim, in_dim) = self.weight.shape().map_err(candle_core::Error::wrap)?;
		let width = x.dims().last().copied().unwrap_or(0);
		if width != in_dim {
			candle_core::bail!("fused-linear: input width {width}, weight [{out_dim}, {in_dim}]")
		}
		Ok((x.elem_count() / in_dim.max(1), in_dim, out_dim))
	}

	/// `x`'s shape with the last dimension `out`.
	fn output_shape(&self, x: &Shape, out_dim: usize) -> Shape {
		let mut dims = x.dims().to_vec();
		if let Some(last) = dims.last_mut() {
			*last = out_dim;
		}
		Shape::from(dims)
	}

	/// `x Wᵀ + b`, `[rows, out]`.
	fn frozen_product(&self, x: &[f32], rows: usize, in_dim: usize, out_dim: usize) -> Result<Vec<f32>> {
		let mut y = vec![0f32; rows * out_dim];
		self.with_weight(|w| {
			sgemm(rows, out_dim, in_dim, 1.0, Operand::plain(x, in_dim), Operand::transposed(w, in_dim), 0.0, &mut y, out_dim);
			Ok(())
		})?;
		if let Some(bias) = &self.bias {
			read(bias, |bias| {
				y.chunks_mut(out_dim).for_each(|row| row.iter_mut().zip(bias).for_each(|(y, b)| *y += b));
				Ok(())
			})?;
		}
		Ok(y)
	}

	/// `g W`, `[rows, in]`.
	fn input_gradient(&self, g: &[f32], rows: usize, in_dim: usize, out_dim: usize) -> Result<Vec<f32>> {
		let mut dx = vec![0f32; rows * in_dim];
		self.with_weight(|w| {
			sgemm(rows, in_dim, out_dim, 1.0, Operand::plain(g, out_dim), Operand::plain(w, in_dim), 0.0, &mut dx, in_dim);
			Ok(())
		})?;
		Ok(dx)
	}

	/// The adapter's input `m ⊙ x`.
	fn adapter_input<'a>(&self, x: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
		match &self.dropout_mask {
			Some(mask) => x.iter().zip(mask).map(|(x, m)| x * m).collect::<Vec<_>>().into(),
			None => x.into(),
		}
	}
}

impl CustomOp1 for FusedLinear {
	fn name(&self) -> &'static str {
		"fused-linear"
	}

	fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let (rows, in_dim, out_dim) = self.dims(layout.shape())?;
		let y = self.frozen_product(contiguous(storage, layout, "fused-linear")?, rows, in_dim, out_dim)?;
		Ok((CpuStorage::F32(y), self.output_shape(layout.shape(), out_dim)))
	}

	fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		let (rows, in_dim, out_dim) = self.dims(x.shape())?;
		let dx = read(grad, |g| self.input_gradient(g, rows, in_dim, out_dim))?;
		gradient(x, dx)
	}
}

impl CustomOp3 for FusedLinear {
	fn name(&self) -> &'static str {
		"fused-lora-linear"
	}

	fn cpu_fwd(
		&self,
		x: &CpuStorage,
		x_layout: &Layout,
		a: &CpuStorage,
		a_layout: &Layout,
		b: &CpuStorage,
		b_layout: &Layout,
	) -> Result<(CpuStorage, Shape)> {
		let (rows, in_dim, out_dim) = self.dims(x_layout.shape())?;
		let rank = a_layout.shape().dims2()?.0;
		let x = contiguous(x, x_layout, "fused-lora-linear")?;
		let (a, b) = (contiguous(a, a_layout, "fused-lora-linear")?, contiguous(b, b_layout, "fused-lora-linear")?);
		let mut y = self.frozen_product(x, rows, in_dim, out_dim)?;
		let mut xa = vec![0f32; rows * rank];
		sgemm(rows, rank, in_dim, 1.0, Operand::plain(&self.adapter_input(x), in_dim), Operand::transposed(a, in_dim), 0.0, &mut xa, rank);
		sgemm(rows, out_dim, rank, self.scale, Operand::plain(&xa, rank), Operand::transposed(b, rank), 1.0, &mut y, out_dim);
		Ok((CpuStorage::F32(y), self.output_shape(x_layout.shape(), out_dim)))
	}

	fn bwd(&self, x: &Tensor, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
		let (rows, in_dim, out_dim) = self.dims(x.shape())?;
		let rank = a.dims2()?.0;
		let s = self.scale;
		// The first layer's input comes from the frozen embedding: no gradient to compute.
		let want_dx = x.track_op();
		let (dx, da, db) = read(x, |x| {
			read(a, |a| {
				read(b, |b| {
					read(grad, |g| {
						let x_in = self.adapter_input(x);
						let mut gb = vec![0f32; rows * rank];
						sgemm(rows, rank, out_dim, 1.0, Operand::plain(g, out_dim), Operand::plain(b, rank), 0.0, &mut gb, rank);
						let mut xa = vec![0f32; rows * rank];
						sgemm(rows, rank, in_dim, 1.0, Operand::plain(&x_in, in_dim), Operand::transposed(a, in_dim), 0.0, &mut xa, rank);
						let mut db = vec![0f32; out_dim * rank];
						sgemm(out_dim, rank, rows, s, Operand::transposed(g, out_dim), Operand::plain(&xa, rank), 0.0, &mut db, rank);
						let mut da = vec![0f32; rank * in_dim];
						sgemm(rank, in_dim, rows, s, Operand::transposed(&gb, rank), Operand::plain(&x_in, in_dim), 0.0, &mut da, in_dim);
						let dx = if !want_dx {
							None
						} else {
							let mut dx = self.input_gradient(g, rows, in_dim, out_dim)?;
							match &self.dropout_mask {
								None => sgemm(rows, in_dim, rank, s, Operand::plain(&gb, rank), Operand::plain(a, in_dim), 1.0, &mut dx, in_dim),
								Some(mask) => {
									let mut branch = vec![0f32; rows * in_dim];
									sgemm(rows, in_dim, rank, s, Operand::plain(&gb, rank), Operand::plain(a, in_dim), 0.0, &mut branch, in_dim);
									dx.iter_mut().zip(branch).zip(mask).for_each(|((dx, v), m)| *dx += v * m);
								},
							}
							Some(dx)
						};
						Ok((dx, da, db))
					})
				})
			})
		})?;
		let dx = match dx {
			Some(dx) => gradient(x, dx)?,
			None => None,
		};
		Ok((dx, gradient(a, da)?, gradient(b, db)?))
	}
}
