//! The MLP activations in one pass each way: the SiLU-gated product `silu(gate) ⊙ up` of
//! LLaMA-style MLPs, and GELU's tanh approximation (GPT-2, BLOOM).
//!
//! They run inside the MLP's output projection ([`super::linear::FusedLinear::after`]), which
//! reads the up projection's output directly. So the activation's `[rows, f]` result is a
//! temporary of the forward pass, recomputed in the backward pass only when an adapter needs
//! it, and is neither kept between the passes nor a node the backward pass visits.
//!
//! With `σ = sigmoid(gate)`: `∂/∂gate = g · up · σ · (1 + gate · (1 − σ))` and
//! `∂/∂up = g · gate · σ`. For GELU, with `u = √(2/π)(x + 0.044715x³)` and `t = tanh u`:
//! `∂/∂x = g · ((1 + t)/2 + x(1 − t²)/2 · √(2/π)(1 + 3 · 0.044715x²))`.

use super::{rows_per_task, vector};
use rayon::prelude::*;

/// An MLP's activation, applied row by row to the up projection's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
	/// `silu(gate) ⊙ up` on rows holding the gate then the up projection (a stacked gate/up
	/// product): a row of `2f` values gives `f`.
	SiluGate,
	/// GELU's tanh form, one value per value.
	GeluTanh,
}

impl Activation {
	/// The width of an input row whose activation is `width` wide.
	pub fn input_width(self, width: usize) -> usize {
		match self {
			Activation::SiluGate => 2 * width,
			Activation::GeluTanh => width,
		}
	}

	/// The activation of `x`, whose rows are `input_width` wide.
	pub fn forward(self, x: &[f32], input_width: usize) -> Vec<f32> {
		let width = self.output_width(input_width);
		let rows_per_task = rows_per_task(width);
		let mut y = vec![0f32; x.len() / input_width.max(1) * width];
		y.par_chunks_mut(rows_per_task * width)
			.zip(x.par_chunks(rows_per_task * input_width))
			.for_each(|(y, x)| {
				for (y, x) in y.chunks_mut(width).zip(x.chunks(input_width)) {
					match self {
						Activation::SiluGate => {
							let (gate, up) = x.split_at(width);
							vector::silu_gate(y, gate, up);
						},
						Activation::GeluTanh => vector::gelu_tanh(y, x),
					}
				}
			});
		y
	}

	/// `∂L/∂x` from `grad = ∂L/∂y`, for `x` with rows `input_width` wide.
	pub fn backward(self, x: &[f32], grad: &[f32], input_width: usize) -> Vec<f32> {
		let width = self.output_width(input_width);
		let rows_per_task = rows_per_task(width);
		let mut dx = vec![0f32; x.len()];
		dx.par_chunks_mut(rows_per_task * input_width)
			.zip(
				x.par_chunks(rows_per_task * input_width)
					.zip(grad.par_chunks(rows_per_task * width)),
			)
			.for_each(|(dx, (x, grad))| {
				for ((dx, x), grad) in
					dx.chunks_mut(input_width).zip(x.chunks(input_width)).zip(grad.chunks(width))
				{
					match self {
						Activation::SiluGate => {
							let (d_gate, d_up) = dx.split_at_mut(width);
							let (gate, up) = x.split_at(width);
							vector::silu_gate_backward(d_gate, d_up, gate, up, grad);
						},
						Activation::GeluTanh => vector::gelu_tanh_backward(dx, x, grad),
					}
				}
			});
		dx
	}

	/// The width of the activation of an input row `input_width` wide.
	pub fn output_width(self, input_width: usize) -> usize {
		match self {
			Activation::SiluGate => input_width / 2,
			Activation::GeluTanh => input_width,
		}
	}
}
