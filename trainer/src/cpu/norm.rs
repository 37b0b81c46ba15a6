//! RMSNorm and LayerNorm over the last dimension, with a frozen scale (and shift).
//!
//! With `x̂ = (x − μ)·r`, `r = 1/√(var + ε)` (for RMSNorm `μ = 0` and `var = mean(x²)`) and
//! `ĝ = g ⊙ w`, the input gradient is `r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))`, without the
//! `mean(ĝ)` term for RMSNorm.

use super::{contiguous, read, rows_per_task, tensor};
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

impl Norm {
	/// `(μ, r)` of one row.
	fn statistics(&self, row: &[f32]) -> (f32, f32) {
		let n = row.len() as f32;
		let mean = if self.centered { row.iter().sum::<f32>() / n } else { 0.0 };
		let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
		(mean, 1.0 / (var + self.eps).sqrt())
	}
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
				let (mean, r) = self.statistics(x);
				for j in 0..width {
					y[j] = (x[j] - mean) * r * self.weight[j] + self.bias.as_ref().map_or(0.0, |b| b[j]);
				}
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
				dx.par_chunks_mut(rows * width).zip(x.par_chunks(rows * width)).zip(g.par_chunks(rows * width)).for_each(
					|((dx, x), g)| {
						for ((dx, x), g) in dx.chunks_mut(width).zip(x.chunks(width)).zip(g.chunks(width)) {
							let (mean, r) = self.statistics(x);
							let (mut sum_g, mut sum_gx) = (0f32, 0f32);
							for j in 0..width {
								let gw = g[j] * self.weight[j];
								sum_g += gw;
								sum_gx += gw * (x[j] - mean) * r;
							}
							let n = width as f32;
							let mean_g = if self.centered { sum_g / n } else { 0.0 };
							let mean_gx = sum_gx / n;
							for j in 0..width {
								let x_hat = (x[j] - mean) * r;
								dx[j] = r * (g[j] * self.weight[j] - mean_g - x_hat * mean_gx);
							}
						}
					},
				);
				Ok(dx)
			})
		})?;
		Ok(Some(tensor(dx, x.shape())?))
	}
}
