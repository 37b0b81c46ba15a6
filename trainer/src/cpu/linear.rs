//! A linear layer's frozen product and LoRA branches in one op:
//! `y = x Wᵀ + b + s · (m ⊙ x) Aᵀ Bᵀ`, with `m` the dropout mask and `s` the adapter's scale.
//!
//! Backward, with `g = ∂L/∂y`: `dx = g W + s · m ⊙ (g B) A`, `dB = s · gᵀ (m ⊙ x) Aᵀ` and
//! `dA = s · (g B)ᵀ (m ⊙ x)`. The frozen `W` and `b` get no gradient, which saves the `xᵀ g`
//! product candle's matmul would compute; a quantised `W` is dequantised for each pass only,
//! or, for inference, read straight from its codes.
//!
//! Several layers that read the same input (q/k/v, gate/up) run as one op over their stacked
//! weights, each adapter a branch on its own output columns: one wide product instead of three
//! narrow ones, and one gradient for the input instead of three that candle would sum.
//!
//! A block's output projections without an adapter also add the residual stream:
//! `x.apply_op2(&residual, op)` gives `residual + x Wᵀ + b` and hands `g` back to the residual,
//! in place of an add node whose forward pass and backward edges cost more than the product's
//! `β = 1`.
//!
//! An MLP's output projection applies the activation to its input itself ([`FusedLinear::after`]):
//! `x` is then the up projection's output, and `dx` goes back through the activation.

use super::{
	blas::{sgemm, sgemm_new, Operand},
	contiguous, gradient,
	mlp::Activation,
	read, read_half, segments, Saved,
};
use super::{
	gemm::{self, Half, PanelCache},
	int8, spin, vector,
};
use crate::{
	frozen::FrozenWeight,
	quant::{QuantKind, QuantizedMatrix, BLOCK},
};
use candle_core::{
	CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, TensorId,
};
use std::{borrow::Cow, sync::Arc};

/// Apply to a contiguous `x` `[…, in]` (every leading position is a row, so callers need no
/// reshape, which would be one more node for the backward pass to visit): `x.apply_op1(op)`
/// without adapters, `x.apply_op3(&a, &b, op)` with them, `a` `[branches · r, in]` and `b`
/// `[Σ columns, r]` holding each branch's `A` and `B` in branch order.
pub struct FusedLinear {
	/// The frozen `W` `[out, in]`.
	weight: FrozenWeight,
	/// The frozen `b` `[out]`.
	bias: Option<Tensor>,
	/// The adapters' `α/r` (or `α/√r`), the same for every branch.
	scale: f32,
	/// The LoRA branches, in the order of their rows in `a` and `b`.
	branches: Vec<Branch>,
	/// `(m ⊙ x) Aᵀ` `[rows, branches · r]` from the forward pass, for the backward pass.
	adapter_activations: Saved,
	/// Applied to the op's input first; the layer reads its result.
	activation: Option<Activation>,
	/// Read a quantised `W` straight from its codes ([`quantized_product`]) rather than
	/// dequantising it for BLAS: for inference, where no gradient follows.
	read_codes: bool,
	/// Dequantise a quantised `W` to this 16-bit format and multiply in it ([`super::gemm`]).
	half: Option<Half>,
	/// The layer's panels of a dense f16 `W`, packed once for all its products.
	panels: Option<Arc<PanelCache>>,
}

/// One adapter of a [`FusedLinear`]: it adds to output columns `first_column..first_column +
/// columns`.
pub struct Branch {
	/// The first output column the branch adds to.
	pub first_column: usize,
	/// How many output columns it adds to (its layer's width).
	pub columns: usize,
	/// Dropout's mask on the branch's input `[rows, in]`, already divided by the keep rate.
	pub dropout_mask: Option<Vec<f32>>,
	/// Tensor ids of the adapter's `A` and `B` variables, for [`super::segments`].
	pub ids: (TensorId, TensorId),
	/// The batch's rows the op's input rows were gathered from (a routed expert's tokens), for
	/// [`super::segments`]; `None` when they are the batch's own rows.
	pub source_rows: Option<Arc<[u32]>>,
}

impl FusedLinear {
	/// The op for `weight` (stacked, for several layers), `bias`, and LoRA `branches` scaled by
	/// `scale`.
	pub fn new(
		weight: FrozenWeight,
		bias: Option<Tensor>,
		scale: f32,
		branches: Vec<Branch>,
	) -> Self {
		Self {
			weight,
			bias,
			scale,
			branches,
			adapter_activations: Saved::default(),
			activation: None,
			read_codes: false,
			half: None,
			panels: None,
		}
	}

	/// Reads a dense f16 `W`'s panels from `cache` (packed on first use) instead of packing
	/// them in each product.
	pub fn with_panels(self, cache: Arc<PanelCache>) -> Self {
		Self { panels: Some(cache), ..self }
	}

	/// The 16-bit format a quantised `W` is dequantised to for its kernel (where the CPU has
	/// it) rather than to `f32`. A bf16 or f16 `W` always takes its own kernel.
	pub fn in_half(self, half: Option<Half>) -> Self {
		Self { half: half.filter(|h| h.supported()), ..self }
	}

	/// Runs `f` on `W` as 16-bit values and their format when its products run in 16 bits, else
	/// returns `None`.
	fn with_half_weight<R>(&self, f: impl FnOnce(&[u16], Half) -> Result<R>) -> Result<Option<R>> {
		match (&self.weight, self.half) {
			(FrozenWeight::Dense(w), _) => read_half(w, f),
			(_, None) => Ok(None),
			(quantized, Some(half)) => {
				let values = quantized.dequantized_values().map_err(candle_core::Error::wrap)?;
				// Beyond f16's safe range the product stays in f32 (see `MAX_F16_WEIGHT`).
				if half == Half::F16 && values.iter().any(|v| v.abs() > super::gemm::MAX_F16_WEIGHT)
				{
					return Ok(None);
				}
				let bits: Vec<u16> = values.into_iter().map(|v| half.round(v)).collect();
				f(&bits, half).map(Some)
			},
		}
	}

	/// Whether a quantised `W` is read from its codes (inference) or dequantised for BLAS.
	pub fn reading_codes(self, read_codes: bool) -> Self {
		Self { read_codes, ..self }
	}

	/// The layer applied to `activation(x)`: the op's input is then the activation's input.
	pub fn after(self, activation: Activation) -> Self {
		Self { activation: Some(activation), ..self }
	}

	/// The layer's own input: `x`, or its activation.
	fn layer_input<'a>(&self, x: &'a [f32], in_dim: usize) -> Cow<'a, [f32]> {
		match self.activation {
			Some(activation) => activation.forward(x, activation.input_width(in_dim)).into(),
			None => x.into(),
		}
	}

	/// `∂L/∂x` from the gradient of the layer's own input.
	fn through_activation(&self, x: &[f32], d_input: Vec<f32>, in_dim: usize) -> Vec<f32> {
		match self.activation {
			Some(activation) => activation.backward(x, &d_input, activation.input_width(in_dim)),
			None => d_input,
		}
	}

	fn with_weight<R>(&self, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
		match &self.weight {
			FrozenWeight::Dense(w) if w.dtype() == candle_core::DType::F32 => read(w, f),
			quantized => f(&quantized.dequantized_values().map_err(candle_core::Error::wrap)?),
		}
	}

	/// Rows, the layer's input width and its output width, for the op's input `x`.
	fn dims(&self, x: &Shape) -> Result<(usize, usize, usize)> {
		let (out_dim, in_dim) = self.weight.shape().map_err(candle_core::Error::wrap)?;
		let width = x.dims().last().copied().unwrap_or(0);
		let expected = self.activation.map_or(in_dim, |a| a.input_width(in_dim));
		if width != expected {
			candle_core::bail!(
				"fused-linear: input width {width}, weight [{out_dim}, {in_dim}], activation {:?}",
				self.activation
			)
		}
		Ok((x.elem_count() / expected.max(1), in_dim, out_dim))
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
	fn frozen_product(
		&self,
		x: &[f32],
		rows: usize,
		in_dim: usize,
		out_dim: usize,
	) -> Result<Vec<f32>> {
		self.frozen_product_onto(None, x, rows, in_dim, out_dim)
	}

	/// `residual + x Wᵀ + b`, `[rows, out]`; without a residual, into fresh memory.
	fn frozen_product_onto(
		&self,
		residual: Option<&[f32]>,
		x: &[f32],
		rows: usize,
		in_dim: usize,
		out_dim: usize,
	) -> Result<Vec<f32>> {
		let direct =
			if self.read_codes { quantized_product(&self.weight, x, rows, in_dim) } else { None };
		let mut y = match (residual, direct) {
			(Some(residual), Some(mut y)) => {
				y.iter_mut().zip(residual).for_each(|(y, r)| *y += r);
				y
			},
			(None, Some(y)) => y,
			(Some(residual), None) => {
				self.weight_product(x, rows, true, Some(&mut residual.to_vec()))?
			},
			(None, None) => self.weight_product(x, rows, true, None)?,
		};
		if let Some(bias) = &self.bias {
			read(bias, |bias| {
				y.chunks_mut(out_dim)
					.for_each(|row| row.iter_mut().zip(bias).for_each(|(y, b)| *y += b));
				Ok(())
			})?;
		}
		Ok(y)
	}

	/// The frozen layer on `rows` rows of `x` (the op's input: before the activation, if it has
	/// one), `[rows, out]`: what the op's forward pass computes, for an op that holds several
	/// layers ([`super::experts`]).
	pub(crate) fn frozen_rows(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
		let (out_dim, in_dim) = self.weight.shape().map_err(candle_core::Error::wrap)?;
		let x = self.layer_input(x, in_dim);
		self.frozen_product(&x, rows, in_dim, out_dim)
	}

	/// The gradient of [`FusedLinear::frozen_rows`]'s input `x` from its output's `g`.
	pub(crate) fn frozen_rows_gradient(
		&self,
		x: &[f32],
		g: &[f32],
		rows: usize,
	) -> Result<Vec<f32>> {
		let in_dim = self.weight.shape().map_err(candle_core::Error::wrap)?.1;
		Ok(self.through_activation(x, self.input_gradient(g, rows)?, in_dim))
	}

	/// `g W`, `[rows, in]`.
	fn input_gradient(&self, g: &[f32], rows: usize) -> Result<Vec<f32>> {
		self.weight_product(g, rows, false, None)
	}

	/// `a Wᵀ` (`transposed`, the forward product) or `a W` (the input's gradient): added onto
	/// `onto` (returned), or in fresh memory. In 16 bits for a bf16 or f16 base
	/// ([`FusedLinear::in_half`]), else in f32 ([`sgemm`]).
	fn weight_product(
		&self,
		a: &[f32],
		rows: usize,
		transposed: bool,
		onto: Option<&mut Vec<f32>>,
	) -> Result<Vec<f32>> {
		let (out_dim, in_dim) = self.weight.shape().map_err(candle_core::Error::wrap)?;
		let (n, k) = if transposed { (out_dim, in_dim) } else { (in_dim, out_dim) };
		let mut c = onto.map(std::mem::take);
		let in_half = self.with_half_weight(|w, half| {
			let w = gemm::Weight::new(w, out_dim, in_dim, transposed);
			let panels = match (&self.weight, &self.panels) {
				(FrozenWeight::Dense(dense), Some(cache)) => cache.panels(dense.id(), half, w),
				_ => None,
			};
			Ok(match c.take() {
				Some(mut c) => {
					half.product(a, rows, w, panels, &mut c, true);
					c
				},
				None => half.product_new(a, rows, w, panels),
			})
		})?;
		if let Some(c) = in_half {
			return Ok(c);
		}
		self.with_weight(|w| {
			let b = match transposed {
				true => Operand::transposed(w, in_dim),
				false => Operand::plain(w, in_dim),
			};
			Ok(match c {
				Some(mut c) => {
					sgemm(rows, n, k, 1.0, Operand::plain(a, k), b, 1.0, &mut c, n);
					c
				},
				None => sgemm_new(rows, n, k, 1.0, Operand::plain(a, k), b),
			})
		})
	}

	/// `∂L/∂x` of an op without adapters.
	fn frozen_input_gradient(&self, x: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		if !x.track_op() {
			return Ok(None);
		}
		let (rows, in_dim, _) = self.dims(x.shape())?;
		let d_input = read(grad, |g| self.input_gradient(g, rows))?;
		let dx = read(x, |x| Ok(self.through_activation(x, d_input, in_dim)))?;
		gradient(x, dx)
	}

	/// Whether any branch drops inputs; without dropout every branch reads the same `x`, and
	/// their `A` products run as one.
	fn any_dropout(&self) -> bool {
		self.branches.iter().any(|b| b.dropout_mask.is_some())
	}

	/// Rows of the stacked `B`: every branch's columns.
	fn b_rows(&self) -> usize {
		self.branches.iter().map(|b| b.columns).sum()
	}

	/// Each branch's first row in the stacked `B`.
	fn b_offsets(&self) -> Vec<usize> {
		self.branches
			.iter()
			.scan(0, |next, branch| Some(std::mem::replace(next, *next + branch.columns)))
			.collect()
	}

	/// `(m ⊙ x) Aᵀ` for every branch, `[rows, branches · rank]`.
	fn adapter_products(
		&self,
		x: &[f32],
		a: &[f32],
		rows: usize,
		in_dim: usize,
		rank: usize,
	) -> Vec<f32> {
		let width = self.branches.len() * rank;
		if !self.any_dropout() {
			return sgemm_new(
				rows,
				width,
				in_dim,
				1.0,
				Operand::plain(x, in_dim),
				Operand::transposed(a, in_dim),
			);
		}
		let mut xa = vec![0f32; rows * width];
		for (i, branch) in self.branches.iter().enumerate() {
			let a_i = Operand::transposed(&a[i * rank * in_dim..], in_dim);
			let input = adapter_input(x, &branch.dropout_mask);
			sgemm(
				rows,
				rank,
				in_dim,
				1.0,
				Operand::plain(&input, in_dim),
				a_i,
				0.0,
				&mut xa[i * rank..],
				width,
			);
		}
		xa
	}
}

/// A branch's input `m ⊙ x`.
fn adapter_input<'a>(x: &'a [f32], mask: &Option<Vec<f32>>) -> Cow<'a, [f32]> {
	match mask {
		Some(mask) => x.iter().zip(mask).map(|(x, m)| x * m).collect::<Vec<_>>().into(),
		None => x.into(),
	}
}

/// `x Wᵀ` `[rows, out]` read straight from a quantised `W`'s codes, or `None` for a dense `W`
/// (or one whose rows do not start on a block). Decoding a token reads the codes (a quarter of
/// the `f32` bytes for int8, an eighth for NF4) instead of a dequantised copy, and each row's
/// result is the same whatever else is in the batch. Int8 weights meet the rows of `x`
/// quantised the same way ([`int8`]); an NF4 weight row is decoded once into a buffer and
/// dotted with every row of `x`.
fn quantized_product(
	weight: &FrozenWeight,
	x: &[f32],
	rows: usize,
	in_dim: usize,
) -> Option<Vec<f32>> {
	let matrices: Vec<&QuantizedMatrix> = match weight {
		FrozenWeight::Dense(_) => return None,
		FrozenWeight::Quantized(q, _) => vec![q],
		FrozenWeight::Stacked(parts) => parts
			.iter()
			.map(|p| match p {
				FrozenWeight::Quantized(q, _) => Some(&**q),
				_ => None,
			})
			.collect::<Option<_>>()?,
	};
	if !in_dim.is_multiple_of(BLOCK) || in_dim == 0 {
		return None;
	}
	let weight_rows: Vec<(&QuantizedMatrix, usize)> =
		matrices.iter().flat_map(|q| (0..q.len / in_dim).map(move |o| (*q, o * in_dim))).collect();
	let quantized_rows: Vec<int8::QuantizedRow> =
		if matrices.iter().any(|q| q.kind == QuantKind::Int8) {
			x.chunks_exact(in_dim).map(int8::QuantizedRow::new).collect()
		} else {
			Vec::new()
		};
	let out_dim = weight_rows.len();
	let mut by_output = vec![0f32; out_dim * rows];
	// A few tasks a thread: one weight row is too little work to hand out alone.
	let per_task = out_dim.div_ceil(4 * rayon::current_num_threads()).max(16);
	spin::for_each_chunk(&mut by_output, per_task * rows, |task, outputs| {
		let mut decoded = Vec::new();
		for (out, &(matrix, start)) in outputs.chunks_mut(rows).zip(&weight_rows[task * per_task..])
		{
			match matrix.kind {
				QuantKind::Int8 => {
					let (codes, scales) = (
						&matrix.codes[start..start + in_dim],
						&matrix.scales[start / BLOCK..(start + in_dim) / BLOCK],
					);
					for (y, x) in out.iter_mut().zip(&quantized_rows) {
						*y = int8::dot(codes, scales, x);
					}
				},
				QuantKind::Nf4 => {
					decoded.resize(in_dim, 0f32);
					matrix.dequantize_into(start, &mut decoded);
					for (y, x) in out.iter_mut().zip(x.chunks_exact(in_dim)) {
						*y = vector::dot(&decoded, x);
					}
				},
			}
		}
	});
	if rows == 1 {
		// One row (decoding a token): by output is already the row.
		return Some(by_output);
	}
	let mut y = vec![0f32; rows * out_dim];
	for (o, column) in by_output.chunks_exact(rows).enumerate() {
		for (r, value) in column.iter().enumerate() {
			y[r * out_dim + o] = *value;
		}
	}
	Some(y)
}

impl CustomOp1 for FusedLinear {
	fn name(&self) -> &'static str {
		"fused-linear"
	}

	fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
		let (rows, in_dim, out_dim) = self.dims(layout.shape())?;
		let x = self.layer_input(contiguous(storage, layout, "fused-linear")?, in_dim);
		let y = self.frozen_product(&x, rows, in_dim, out_dim)?;
		Ok((CpuStorage::F32(y), self.output_shape(layout.shape(), out_dim)))
	}

	fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
		self.frozen_input_gradient(x, grad)
	}
}

impl CustomOp2 for FusedLinear {
	fn name(&self) -> &'static str {
		"fused-linear-residual"
	}

	fn cpu_fwd(
		&self,
		x: &CpuStorage,
		x_layout: &Layout,
		residual: &CpuStorage,
		residual_layout: &Layout,
	) -> Result<(CpuStorage, Shape)> {
		let (rows, in_dim, out_dim) = self.dims(x_layout.shape())?;
		let shape = self.output_shape(x_layout.shape(), out_dim);
		if !self.branches.is_empty() || residual_layout.shape() != &shape {
			candle_core::bail!("fused-linear-residual: residual {:?} for output {shape:?}, {} adapters (takes none)", residual_layout.shape(), self.branches.len())
		}
		let x = self.layer_input(contiguous(x, x_layout, "fused-linear-residual")?, in_dim);
		let residual = contiguous(residual, residual_layout, "fused-linear-residual")?;
		let y = self.frozen_product_onto(Some(residual), &x, rows, in_dim, out_dim)?;
		Ok((CpuStorage::F32(y), shape))
	}

	fn bwd(
		&self,
		x: &Tensor,
		residual: &Tensor,
		_res: &Tensor,
		grad: &Tensor,
	) -> Result<(Option<Tensor>, Option<Tensor>)> {
		let d_residual = residual.track_op().then(|| grad.clone());
		Ok((self.frozen_input_gradient(x, grad)?, d_residual))
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
		let rank = b_layout.shape().dims2()?.1;
		if a_layout.shape().dims2()? != (self.branches.len() * rank, in_dim)
			|| b_layout.shape().dims2()?.0 != self.b_rows()
			|| self.branches.iter().any(|b| b.first_column + b.columns > out_dim)
		{
			candle_core::bail!(
				"fused-lora-linear: adapters {:?} and {:?} do not fit {} branches",
				a_layout.shape(),
				b_layout.shape(),
				self.branches.len()
			)
		}
		let x = self.layer_input(contiguous(x, x_layout, "fused-lora-linear")?, in_dim);
		let (a, b) = (
			contiguous(a, a_layout, "fused-lora-linear")?,
			contiguous(b, b_layout, "fused-lora-linear")?,
		);
		let mut y = self.frozen_product(&x, rows, in_dim, out_dim)?;
		let xa = self.adapter_products(&x, a, rows, in_dim, rank);
		let width = self.branches.len() * rank;
		for (i, (branch, b_offset)) in self.branches.iter().zip(self.b_offsets()).enumerate() {
			let b_i = Operand::transposed(&b[b_offset * rank..], rank);
			sgemm(
				rows,
				branch.columns,
				rank,
				self.scale,
				Operand::plain(&xa[i * rank..], width),
				b_i,
				1.0,
				&mut y[branch.first_column..],
				out_dim,
			);
		}
		self.adapter_activations.put(xa)?;
		Ok((CpuStorage::F32(y), self.output_shape(x_layout.shape(), out_dim)))
	}

	fn bwd(
		&self,
		x: &Tensor,
		a: &Tensor,
		b: &Tensor,
		_res: &Tensor,
		grad: &Tensor,
	) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
		let (rows, in_dim, out_dim) = self.dims(x.shape())?;
		let rank = b.dims2()?.1;
		let (s, width) = (self.scale, self.branches.len() * rank);
		let b_offsets = self.b_offsets();
		// The first layer's input comes from the frozen embedding: no gradient to compute.
		let want_dx = x.track_op();
		let cached = self.adapter_activations.take()?;
		let (dx, da, db) = read(x, |op_input| {
			let layer_input = self.layer_input(op_input, in_dim);
			let x = &*layer_input;
			read(a, |a| {
				read(b, |b| {
					read(grad, |g| {
						let xa = if cached.len() == rows * width {
							cached
						} else {
							self.adapter_products(x, a, rows, in_dim, rank)
						};
						// `g B` per branch, side by side like `xa`.
						let mut gb = vec![0f32; rows * width];
						let mut db = vec![0f32; self.b_rows() * rank];
						for (i, (branch, &b_offset)) in
							self.branches.iter().zip(&b_offsets).enumerate()
						{
							let g_i = &g[branch.first_column..];
							sgemm(
								rows,
								rank,
								branch.columns,
								1.0,
								Operand::plain(g_i, out_dim),
								Operand::plain(&b[b_offset * rank..], rank),
								0.0,
								&mut gb[i * rank..],
								width,
							);
							sgemm(
								branch.columns,
								rank,
								rows,
								s,
								Operand::transposed(g_i, out_dim),
								Operand::plain(&xa[i * rank..], width),
								0.0,
								&mut db[b_offset * rank..],
								rank,
							);
						}
						let mut da = vec![0f32; width * in_dim];
						let mut dx =
							if want_dx { Some(self.input_gradient(g, rows)?) } else { None };
						if !self.any_dropout() {
							sgemm(
								width,
								in_dim,
								rows,
								s,
								Operand::transposed(&gb, width),
								Operand::plain(x, in_dim),
								0.0,
								&mut da,
								in_dim,
							);
							if let Some(dx) = dx.as_mut() {
								sgemm(
									rows,
									in_dim,
									width,
									s,
									Operand::plain(&gb, width),
									Operand::plain(a, in_dim),
									1.0,
									dx,
									in_dim,
								);
							}
						} else {
							for (i, branch) in self.branches.iter().enumerate() {
								let (gb_i, a_i) = (&gb[i * rank..], &a[i * rank * in_dim..]);
								let input = adapter_input(x, &branch.dropout_mask);
								sgemm(
									rank,
									in_dim,
									rows,
									s,
									Operand::transposed(gb_i, width),
									Operand::plain(&input, in_dim),
									0.0,
									&mut da[i * rank * in_dim..],
									in_dim,
								);
								let Some(dx) = dx.as_mut() else { continue };
								let mut through = vec![0f32; rows * in_dim];
								sgemm(
									rows,
									in_dim,
									rank,
									s,
									Operand::plain(gb_i, width),
									Operand::plain(a_i, in_dim),
									0.0,
									&mut through,
									in_dim,
								);
								match &branch.dropout_mask {
									Some(mask) => dx
										.iter_mut()
										.zip(through)
										.zip(mask)
										.for_each(|((dx, v), m)| *dx += v * m),
									None => dx.iter_mut().zip(through).for_each(|(dx, v)| *dx += v),
								}
							}
						}
						if segments::recording() {
							for (i, branch) in self.branches.iter().enumerate() {
								segments::add_branch(segments::BranchRows {
									ids: branch.ids,
									g: &g[branch.first_column..],
									g_stride: out_dim,
									xa: &xa[i * rank..],
									gb: &gb[i * rank..],
									width,
									input: &adapter_input(x, &branch.dropout_mask),
									in_dim,
									columns: branch.columns,
									rank,
									scale: s,
									source_rows: branch.source_rows.as_deref(),
								});
							}
						}
						Ok((dx.map(|dx| self.through_activation(op_input, dx, in_dim)), da, db))
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
