//! The MLP activations in one pass each way: the SiLU-gated product `silu(gate) ⊙ up` of
//! LLaMA-style MLPs, and GELU's tanh approximation (GPT-2, BLOOM).
//!
//! With `σ = sigmoid(gate)`: `∂/∂gate = g · up · σ · (1 + gate · (1 − σ))` and
//! `∂/∂up = g · gate · σ`. For GELU, with `u = √(2/π)(x + 0.044715x³)` and `t = tanh u`:
//! `∂/∂x = g · ((1 + t)/2 + x(1 − t²)/2 · √(2/π)(1 + 3 · 0.044715x²))`.

use super::{contiguous, gradient, read, rows_per_task, vector};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

const CHUNK: usize = 16_384;

/// Apply with `gate.apply_op2(&up, SiluGate)`, both contiguous and of one shape; or with
/// `gate_up.apply_op1(SiluGate)` to a contiguous `[…, 2f]` whose rows hold the gate then the up
/// projection (a stacked gate/up product), for a `[…, f]` result.
pub struct SiluGate;

impl CustomOp1 for SiluGate {
	fn name(&self) -> &'static str {
		"fused-silu-gate"
	}

	fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let x = contiguous(storage, layout, "fused-silu-gate")?;
		let mut dims = layout.shape().dims().to_vec();
		let width = dims.last().copied().unwrap_or(0);
		if width % 2 != 0 {
			candle_core::bail!("fused-silu-gate: a stacked gate/up row has an odd width {width}")
		}
		let half = width / 2;
		let rows_per_task = rows_per_task(half);
		let mut y = vec![0f32; x.len() / 2];
		y.par_chunks_mut(rows_per_task * half).zip(x.par_chunks(rows_per_task * width)).for_each(|(y, x)| {
			for (y, x) in y.chunks_mut(half).zip(x.chunks(width)) {
				let (gate, up) = x.split_at(half);
				vector::silu_gate(y, gate, up);
			}
		});
		if let Some(last) = dims.last_mut() {
			*last = half;
		}
		Ok((CpuStorage::F32(y), Shape::from(dims)))
	}

	fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		let width = x.dims().last().copied().unwrap_or(0);
		let half = width / 2;
		let rows_per_task = rows_per_task(half);
		let dx = read(x, |x| {
			read(grad, |grad| {
				let mut dx = vec![0f32; x.len()];
				dx.par_chunks_mut(rows_per_task * width)
					.zip(x.par_chunks(rows_per_task * width).zip(grad.par_chunks(rows_per_task * half)))
					.for_each(|(dx, (x, grad))| {
						for ((dx, x), grad) in dx.chunks_mut(width).zip(x.chunks(width)).zip(grad.chunks(half)) {
							let (d_gate, d_up) = dx.split_at_mut(half);
							let (gate, up) = x.split_at(half);
							vector::silu_gate_backward(d_gate, d_up, gate, up, grad);
						}
					});
				Ok(dx)
			})
		})?;
		gradient(x, dx)
	}
}

impl CustomOp2 for SiluGate {
	fn name(&self) -> &'static str {
		"fused-silu-gate"
	}

	fn cpu_fwd(&self, gate: &CpuStorage, gate_layout: &Layout, up: &CpuStorage, up_layout: &Layout) -> Result<(CpuStorage, Shape)> {
		if gate_layout.shape() != up_layout.shape() {
			candle_core::bail!("fused-silu-gate: gate {:?} and up {:?} differ", gate_layout.shape(), up_layout.shape())
		}
		let (gate, up) = (contiguous(gate, gate_layout, "fused-silu-gate")?, contiguous(up, up_layout, "fused-silu-gate")?);
		let mut y = vec![0f32; gate.len()];
		y.par_chunks_mut(CHUNK).zip(gate.par_chunks(CHUNK)).zip(up.par_chunks(CHUNK)).for_each(|((y, gate), up)| {
			vector::silu_gate(y, gate, up);
		});
		Ok((CpuStorage::F32(y), gate_layout.shape().clone()))
	}

	fn bwd(&self, gate: &Tensor, up: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
		let (d_gate, d_up) = read(gate, |gate| {
			read(up, |up| {
				read(grad, |grad| {
					let mut d_gate = vec![0f32; gate.len()];
					let mut d_up = vec![0f32; gate.len()];
					d_gate
						.par_chunks_mut(CHUNK)
						.zip(d_up.par_chunks_mut(CHUNK))
						.zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)).zip(grad.par_chunks(CHUNK)))
						.for_each(|((d_gate, d_up), ((gate, up), grad))| {
							vector::silu_gate_backward(d_gate, d_up, gate, up, grad);
						});
					Ok((d_gate, d_up))
				})
			})
		})?;
		Ok((gradient(gate, d_gate)?, gradient(up, d_up)?))
	}
}

/// Apply with `x.apply_op1(GeluTanh)`; `x` contiguous.
pub struct GeluTanh;

impl CustomOp1 for GeluTanh {
	fn name(&self) -> &'static str {
		"fused-gelu-tanh"
	}

	fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let x = contiguous(storage, layout, self.name())?;
		let mut y = vec![0f32; x.len()];
		y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| vector::gelu_tanh(y, x));
		Ok((CpuStorage::F32(y), layout.shape().clone()))
	}

	fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		let dx = read(x, |x| {
			read(grad, |grad| {
				let mut dx = vec![0f32; x.len()];
				dx.par_chunks_mut(CHUNK)
					.zip(x.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
					.for_each(|(dx, (x, grad))| vector::gelu_tanh_backward(dx, x, grad));
				Ok(dx)
			})
		})?;
		gradient(x, dx)
	}
}
