//! RMSNorm and LayerNorm over the last dimension, with a frozen scale (and shift).
//!
//! With `x̂ = (x − μ)·r`, `r = 1/√(var + ε)` (for RMSNorm `μ = 0` and `var = mean(x²)`) and
//! `ĝ = g ⊙ w`, the input gradient is `r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))`, without the
//! `mean(ĝ)` term for RMSNorm.

use super::{contiguous, read, rows_per_task, tensor, vector};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The normalisation op; apply it with `x.apply_op1(norm)`.
pub struct Norm {
	/// The frozen scale, one per value of a row.
	pub weight: Vec<f32>,
	/// LayerNorm's shift; `None` for RMSNorm.
	pub bias: Option<Vec<f32>>,
	/// Whether the mean is subtracted (LayerNorm) or not (RMSNorm).
	pub centered: bool,
	/// Added to the variance.
	pub eps: f32,
}

impl CustomOp1 for Norm {
	fn name(&self) -> &'static str {
		"fused-norm"
	}

	fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let x = contiguous(storage, layout, self.name())?;
		let width = self.weight.len();
		let mut y = vec![0f32; x.len()];
		let rows = rows_per_task(width);
		y.par_chunks_mut(rows * width).zip(x.par_chunks(rows * width)).for_each(|(y, x)| {
			for (y, x) in y.chunks_mut(width).zip(x.chunks(width)) {
				vector::norm_row(y, x, &self.weight, self.bias.as_deref(), self.centered, self.eps);
			}
		});
		Ok((CpuStorage::F32(y), layout.shape().clone()))
	}

	fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		let width = self.weight.len();
		let dx = read(x, |x| {
			read(grad, |g| {
				let mut dx = vec![0f32; x.len()];
				let rows = rows_per_task(width);
				dx.par_chunks_mut(rows * width)
					.zip(x.par_chunks(rows * width))
					.zip(g.par_chunks(rows * width))
					.for_each(|((dx, x), g)| {
						for ((dx, x), g) in
							dx.chunks_mut(width).zip(x.chunks(width)).zip(g.chunks(width))
						{
							vector::norm_row_backward(
								dx,
								x,
								g,
								&self.weight,
								self.centered,
								self.eps,
							);
						}
					});
				Ok(dx)
			})
		})?;
		Ok(Some(tensor(dx, x.shape())?))
	}
}
