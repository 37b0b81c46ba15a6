//! The one pluggable linear layer: a frozen base (dense or quantised) plus an optional LoRA.
//!
//! `y = x Wᵀ + b + (α/r) · dropout(x) Aᵀ Bᵀ` (Hu et al., *LoRA*, 2021; rsLoRA scales by
//! `α/√r`, Kalajdzievski 2023).
//!
//! The frozen product goes through [`InputGradMatmul`], a custom op whose backward computes only
//! the input's gradient. candle's own matmul backward also computes `xᵀ·grad` for the weight
//! even when nothing asks for it (a third of a layer's training flops wasted on a frozen
//! matrix), and it keeps the dense weight alive until the backward pass. The custom op instead
//! holds the weight as stored (quantised for QLoRA) and dequantises it in each pass, so only
//! one layer's dense copy exists at a time.

use crate::{
	cpu::{
		gemm::PanelCache,
		linear::{Branch, FusedLinear},
		low_rank::Values,
		mlp::Activation,
		spin,
	},
	frozen::FrozenWeight,
	quant::QuantKind,
	rng::Rng,
	Result,
};
#[cfg(feature = "cuda")]
use candle_core::op::BackpropOp;
use candle_core::{
	backend::BackendStorage, CpuStorage, CustomOp1, DType, Layout, Shape, Storage, Tensor, Var,
};
use std::sync::Arc;

/// `x Wᵀ` for a frozen `W`, with an input-only gradient.
struct InputGradMatmul {
	weight: FrozenWeight,
	device: candle_core::Device,
}

impl InputGradMatmul {
	fn product(&self, x: Tensor) -> candle_core::Result<Tensor> {
		let w = self.weight.dense(&self.device).map_err(candle_core::Error::wrap)?;
		x.matmul(&w.t()?)
	}
}

impl CustomOp1 for InputGradMatmul {
	fn name(&self) -> &'static str {
		"input-grad-matmul"
	}

	fn cpu_fwd(
		&self,
		storage: &CpuStorage,
		layout: &Layout,
	) -> candle_core::Result<(CpuStorage, Shape)> {
		let values = storage.as_slice::<f32>()?;
		let x = match layout.contiguous_offsets() {
			Some((start, end)) => {
				Tensor::from_slice(&values[start..end], layout.shape(), &self.device)?
			},
			None => candle_core::bail!("input-grad-matmul needs a contiguous input"),
		};
		let out = self.product(x)?;
		let (storage, layout) = out.storage_and_layout();
		match &*storage {
			Storage::Cpu(cpu) => Ok((cpu.try_clone(layout)?, layout.shape().clone())),
			_ => candle_core::bail!("input-grad-matmul: the product left the CPU"),
		}
	}

	#[cfg(feature = "cuda")]
	fn cuda_fwd(
		&self,
		storage: &candle_core::CudaStorage,
		layout: &Layout,
	) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
		if layout.contiguous_offsets() != Some((0, layout.shape().elem_count())) {
			candle_core::bail!("input-grad-matmul needs a contiguous input at offset 0")
		}
		let x = Tensor::from_storage(
			Storage::Cuda(storage.try_clone(layout)?),
			layout.shape().clone(),
			BackpropOp::none(),
			false,
		);
		let out = self.product(x)?.contiguous()?;
		let (storage, layout) = out.storage_and_layout();
		match &*storage {
			Storage::Cuda(cuda) => Ok((cuda.try_clone(layout)?, layout.shape().clone())),
			_ => candle_core::bail!("input-grad-matmul: the product left the GPU"),
		}
	}

	fn bwd(
		&self,
		_arg: &Tensor,
		_res: &Tensor,
		grad: &Tensor,
	) -> candle_core::Result<Option<Tensor>> {
		let w = self.weight.dense(&self.device).map_err(candle_core::Error::wrap)?;
		Ok(Some(grad.matmul(&w)?))
	}
}

/// A LoRA adapter on one linear layer.
#[derive(Clone, Debug)]
pub struct Lora {
	/// `[r, in]`, Kaiming-uniform at start.
	pub a: Var,
	/// `[out, r]`, zero at start, so training starts from the base model exactly.
	pub b: Var,
	/// `α/r`, or `α/√r` with rsLoRA.
	pub scale: f64,
	/// Probability of dropping an input of the adapter's branch.
	pub dropout: f32,
}

impl Lora {
	/// A fresh adapter for a `[out, in]` layer; `A` comes from `rng`.
	pub fn new(
		rng: &mut Rng,
		(out_dim, in_dim): (usize, usize),
		rank: usize,
		alpha: f64,
		use_rslora: bool,
		dropout: f32,
		device: &candle_core::Device,
	) -> Result<Self> {
		// PEFT: kaiming_uniform_(A, a=√5), i.e. bound = √(6 / ((1 + 5) · fan_in)) = 1/√fan_in.
		let bound = 1.0 / (in_dim as f32).sqrt();
		let a = Var::from_vec(rng.uniform_vec(rank * in_dim, bound), (rank, in_dim), device)?;
		let b = Var::zeros((out_dim, rank), DType::F32, device)?;
		let scale = if use_rslora { alpha / (rank as f64).sqrt() } else { alpha / rank as f64 };
		Ok(Self { a, b, scale, dropout })
	}
}

/// Which implementation of the decoder's ops runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
	/// The fused kernels of [`crate::cpu`] on the CPU; candle's composed ops elsewhere.
	#[default]
	Auto,
	/// candle's composed ops everywhere: the reference the fused kernels are tested against.
	Composed,
}

impl Kernels {
	/// Whether the fused CPU kernels run on `device`.
	pub fn fused_on(self, device: &candle_core::Device) -> bool {
		self == Kernels::Auto && device.is_cpu()
	}
}

/// Per-forward switches: training (dropout on) or not, the stream for dropout masks, the
/// kernels, and the adapters of a serving batch's rows.
#[derive(Clone, Copy, Debug)]
pub struct ForwardMode<'a> {
	/// Dropout applies only in training.
	pub training: bool,
	/// Seed and step: every mask is a pure function of them and the layer.
	pub dropout_key: (u64, u64),
	/// Fused CPU kernels or candle's composed ops.
	pub kernels: Kernels,
	/// Whether `backward()` will follow. Without it the fused loss skips `∂loss/∂h`, a second
	/// product as large as the logits, so evaluating an adapter costs one forward pass.
	pub gradients: bool,
	/// Adapters held apart from the model, each applied to its own rows of the input: a
	/// serving batch mixes requests for different adapters over one base (inference only).
	pub rows: Option<&'a RowAdapters<'a>>,
	/// Where mixture-of-experts layers record, in order, each row's chosen experts.
	pub routing_log: Option<&'a RoutingLog>,
	/// The batch rows the input's rows were gathered from (a routed expert's tokens), so
	/// per-document gradients ([`crate::cpu::segments`]) know each row's document.
	pub source_rows: Option<&'a [u32]>,
	/// The 16-bit kernel products with a quantised base run on ([`crate::cpu::gemm`]); a bf16
	/// or f16 base's always run on its own. The model sets it from its build options.
	pub half: Option<crate::cpu::gemm::Half>,
}

/// Each mixture-of-experts layer's choice, in the order they ran: for every row of its
/// input, the routed experts it chose, best first.
pub type RoutingLog = std::sync::Mutex<Vec<Vec<Vec<usize>>>>;

impl ForwardMode<'_> {
	/// Inference: no dropout, no gradients.
	pub const EVAL: ForwardMode<'static> = ForwardMode {
		training: false,
		dropout_key: (0, 0),
		kernels: Kernels::Auto,
		gradients: false,
		rows: None,
		routing_log: None,
		source_rows: None,
		half: None,
	};

	/// The row adapters, when one of them adapts layer `index`: the others take the plain path.
	fn adapters_for(&self, index: u64) -> Option<&RowAdapters<'_>> {
		self.rows.filter(|rows| rows.adapts(index))
	}
}

/// One adapter's matrices for one layer, laid out for a few rows at a time: `A` `[r, in]` and
/// `scale · Bᵀ` `[r, out]`, both row-major, so a row's update is `r` dot products then `r`
/// scaled additions, each over contiguous memory.
#[derive(Clone, Debug)]
pub struct LoraRows {
	rank: usize,
	a: Values,
	scaled_bt: Values,
}

impl LoraRows {
	/// From PEFT's `A` `[r, in]` and `B` `[out, r]`, scaled by `scale`, held in `f16` when
	/// `half` (see [`crate::cpu::low_rank`]).
	pub fn new(a: &Tensor, b: &Tensor, scale: f64, half: bool) -> Result<Self> {
		let (rank, _) = a.dims2()?;
		let scaled_bt = (b.t()? * scale)?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
		Ok(Self {
			rank,
			a: Values::new(a.flatten_all()?.to_vec1::<f32>()?, half),
			scaled_bt: Values::new(scaled_bt, half),
		})
	}

	/// For serving over `linear`: in `f16` over a quantised base, in `f32` over a dense one.
	pub fn over(linear: &Linear, a: &Tensor, b: &Tensor, scale: f64) -> Result<Self> {
		Self::new(a, b, scale, !matches!(linear.weight, FrozenWeight::Dense(_)))
	}

	/// Bytes held.
	pub fn bytes(&self) -> usize {
		self.a.bytes() + self.scaled_bt.bytes()
	}

	fn out_dim(&self) -> usize {
		self.scaled_bt.len() / self.rank.max(1)
	}

	/// `t = A x` for ranks `first..first + t.len()`.
	fn project(&self, x: &[f32], first: usize, t: &mut [f32]) {
		let in_dim = x.len();
		for (r, t) in (first..).zip(t) {
			*t = self.a.dot(r * in_dim, x);
		}
	}

	/// `y += tᵀ (scale · Bᵀ)` over output columns `first_column..first_column + y.len()`.
	fn expand(&self, t: &[f32], first_column: usize, y: &mut [f32]) {
		let out_dim = self.out_dim();
		for (r, &t) in t.iter().enumerate() {
			self.scaled_bt.add_scaled_to(y, t, r * out_dim + first_column);
		}
	}
}

/// An adapter held apart from any model: for each linear layer (by [`Linear::index`]) its
/// matrices, if it adapts that layer.
#[derive(Clone, Debug, Default)]
pub struct DetachedAdapter {
	/// Indexed by the layer's index.
	pub layers: Vec<Option<LoraRows>>,
}

impl DetachedAdapter {
	/// Bytes held by the matrices.
	pub fn bytes(&self) -> usize {
		self.layers.iter().flatten().map(LoraRows::bytes).sum()
	}

	fn layer(&self, index: u64) -> Option<&LoraRows> {
		self.layers.get(index as usize).and_then(Option::as_ref)
	}
}

/// Which adapter each row of a batch's input takes: consecutive rows sharing one adapter form
/// a group (Punica's and S-LoRA's segmented products: the base product runs once over every
/// row, then each group's two small products are added onto its own rows). Rows in no group
/// take the base alone.
#[derive(Clone, Debug, Default)]
pub struct RowAdapters<'a> {
	/// `(first row, rows, adapter)`, in row order, not overlapping.
	pub groups: Vec<(usize, usize, &'a DetachedAdapter)>,
}

impl RowAdapters<'_> {
	/// Whether any group's adapter adapts layer `index`.
	fn adapts(&self, index: u64) -> bool {
		self.groups.iter().any(|(_, _, adapter)| adapter.layer(index).is_some())
	}
}

/// A linear layer: frozen weight, optional bias, optional LoRA.
#[derive(Clone, Debug)]
pub struct Linear {
	/// The module's path in the checkpoint, e.g. `model.layers.0.self_attn.q_proj`.
	pub path: String,
	/// Index of the layer in the model, for dropout streams.
	pub index: u64,
	/// The frozen weight `[out, in]`.
	pub weight: FrozenWeight,
	/// The frozen bias `[out]`.
	pub bias: Option<Tensor>,
	/// The trainable adapter.
	pub lora: Option<Lora>,
	/// The weight's panels for the f16 kernel, packed on first use.
	pub panels: Arc<PanelCache>,
}

impl Linear {
	/// Applies the layer to `x` of shape `[…, in]`.
	pub fn forward(&self, x: &Tensor, mode: ForwardMode) -> Result<Tensor> {
		self.apply(x, None, mode)
	}

	/// `layer(activation(x))`: an MLP's output projection on its up projection's output.
	pub fn forward_activated(
		&self,
		x: &Tensor,
		activation: Activation,
		mode: ForwardMode,
	) -> Result<Tensor> {
		self.apply(x, Some(activation), mode)
	}

	/// `residual + layer(activation(x))`: a block's output projection adding to the residual
	/// stream `[…, out]`. With an activation, `x` is the MLP's up projection (`[…, 2·in]` for
	/// a stacked gate/up).
	pub fn forward_onto(
		&self,
		residual: &Tensor,
		x: &Tensor,
		activation: Option<Activation>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		if self.lora.is_none() && mode.kernels.fused_on(x.device()) {
			let residual = residual.contiguous()?;
			if let Some(rows) = mode.adapters_for(self.index) {
				// The adapters read the activated input, so the activation runs on its own.
				let x = activated(x, activation, mode)?;
				let y = x.apply_op2(&residual, self.fused_op(&x, None, mode)?)?;
				return add_row_adapters(rows, &[(self.index, 0)], &x, y);
			}
			let op = self.fused_op(x, activation, mode)?;
			return Ok(x.contiguous()?.apply_op2(&residual, op)?);
		}
		Ok((residual + self.apply(x, activation, mode)?)?)
	}

	/// The fused op for input `x`, with this layer's adapter as its one branch.
	fn fused_op(
		&self,
		x: &Tensor,
		activation: Option<Activation>,
		mode: ForwardMode,
	) -> Result<FusedLinear> {
		let in_dim = self.weight.shape()?.1;
		let rows = x.elem_count() / activation.map_or(in_dim, |a| a.input_width(in_dim)).max(1);
		let branch = self.branch(0, rows * in_dim, mode)?;
		let op = fused(&self.weight, &self.bias, &self.panels, self.scale(), branch, mode);
		Ok(match activation {
			Some(activation) => op.after(activation),
			None => op,
		})
	}

	fn apply(
		&self,
		x: &Tensor,
		activation: Option<Activation>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		if let Some(rows) = mode.adapters_for(self.index) {
			let x = activated(x, activation, mode)?;
			let y = self.apply(&x, None, ForwardMode { rows: None, ..mode })?;
			return add_row_adapters(rows, &[(self.index, 0)], &x, y);
		}
		let (out_dim, in_dim) = self.weight.shape()?;
		if mode.kernels.fused_on(x.device()) {
			let op = self.fused_op(x, activation, mode)?;
			let x = x.contiguous()?;
			return Ok(match &self.lora {
				Some(lora) => x.apply_op3(lora.a.as_tensor(), lora.b.as_tensor(), op)?,
				None => x.apply_op1(op)?,
			});
		}
		let x = match activation {
			Some(activation) => composed_activation(x, activation)?,
			None => x.clone(),
		};
		let leading: Vec<usize> = x.dims()[..x.rank() - 1].to_vec();
		let rows: usize = leading.iter().product();
		let flat = x.reshape((rows, in_dim))?.contiguous()?;
		let y = self.composed(flat, rows, in_dim, mode)?;
		let mut shape = leading;
		shape.push(out_dim);
		Ok(y.reshape(shape)?)
	}

	/// The layer as a fused op for raw rows, when it has no adapter.
	pub(crate) fn frozen_op(&self, mode: ForwardMode) -> Option<FusedLinear> {
		let frozen = self.lora.is_none();
		frozen.then(|| fused(&self.weight, &self.bias, &self.panels, 0.0, None, mode))
	}

	/// The adapter's scale, 0 without one.
	fn scale(&self) -> f32 {
		self.lora.as_ref().map_or(0.0, |l| l.scale as f32)
	}

	/// The adapter as a branch of a [`FusedLinear`] writing from `first_column`, for an input
	/// of `input_len` values.
	fn branch(
		&self,
		first_column: usize,
		input_len: usize,
		mode: ForwardMode,
	) -> Result<Option<Branch>> {
		let Some(lora) = &self.lora else { return Ok(None) };
		Ok(Some(Branch {
			first_column,
			columns: self.weight.shape()?.0,
			dropout_mask: self.dropout_mask(input_len, mode),
			ids: (lora.a.as_tensor().id(), lora.b.as_tensor().id()),
			source_rows: mode.source_rows.map(Arc::from),
		}))
	}

	/// Dropout's mask on the adapter's input, scaled by 1/keep, when dropout applies.
	fn dropout_mask(&self, len: usize, mode: ForwardMode) -> Option<Vec<f32>> {
		let lora = self.lora.as_ref().filter(|l| mode.training && l.dropout > 0.0)?;
		let (seed, step) = mode.dropout_key;
		let mut rng = Rng::derive(seed, &[step, self.index, 0xD40]);
		let keep = 1.0 - lora.dropout;
		Some((0..len).map(|_| if rng.next_f32() < keep { 1.0 / keep } else { 0.0 }).collect())
	}

	/// The layer from candle's ops, on `flat` `[rows, in]`.
	fn composed(
		&self,
		flat: Tensor,
		rows: usize,
		in_dim: usize,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let mut y = if flat.track_op() {
			flat.apply_op1(InputGradMatmul {
				weight: self.weight.clone(),
				device: flat.device().clone(),
			})?
		} else {
			flat.matmul(&self.weight.dense(flat.device())?.t()?)?
		};
		if let Some(bias) = &self.bias {
			y = y.broadcast_add(bias)?;
		}
		if let Some(lora) = &self.lora {
			let input = match self.dropout_mask(rows * in_dim, mode) {
				Some(mask) => (&flat * Tensor::from_vec(mask, (rows, in_dim), flat.device())?)?,
				None => flat,
			};
			let update = input.matmul(&lora.a.t()?)?.matmul(&lora.b.t()?)?;
			y = (y + (update * lora.scale)?)?;
		}
		Ok(y)
	}

	/// The dense weight with the adapter folded in: `W + scale · B A`.
	pub fn merged_weight(&self, device: &candle_core::Device) -> Result<Tensor> {
		let w = self.weight.dense(device)?;
		Ok(match &self.lora {
			Some(lora) => (w + (lora.b.as_tensor().matmul(lora.a.as_tensor())? * lora.scale)?)?,
			None => w,
		})
	}
}

/// Most output columns a task of an adapter update adds to.
const UPDATE_COLUMNS: usize = 512;

/// `y` `[…, out_total]` plus each row group's update of the layers `(index, first column)`,
/// for input `x` `[…, in]`. Both steps split over threads ([`spin`]): `t = A x` by row, layer
/// and ranks, the additions by row and equal runs of at most [`UPDATE_COLUMNS`] columns, a
/// multiple of the threads a row. A decoded token has one row, so without the splits its whole
/// update ran on one thread.
fn add_row_adapters(
	rows: &RowAdapters,
	layers: &[(u64, usize)],
	x: &Tensor,
	y: Tensor,
) -> Result<Tensor> {
	let out_total = y.dim(candle_core::D::Minus1)?;
	let in_dim = x.dim(candle_core::D::Minus1)?;
	// (row, adapter layer, its first column), by row.
	let mut updates: Vec<(usize, &LoraRows, usize)> = Vec::new();
	for &(first, count, adapter) in &rows.groups {
		for row in first..first + count {
			for &(index, first_column) in layers {
				if let Some(lora) = adapter.layer(index) {
					updates.push((row, lora, first_column));
				}
			}
		}
	}
	let Some(rank) = updates.iter().map(|u| u.1.rank).max() else { return Ok(y) };
	let mut values = y.flatten_all()?.to_vec1::<f32>()?;
	// Fewer updates than threads (a decoded token has one or two a layer): split their ranks.
	let threads = rayon::current_num_threads();
	let ranks_per_task = match updates.len() < threads {
		true => rank / (threads..=rank).find(|k| rank.is_multiple_of(*k)).unwrap_or(1),
		false => rank,
	};
	let mut t = vec![0f32; updates.len() * rank];
	crate::cpu::read(x, |input| {
		spin::for_each_chunk(&mut t, ranks_per_task, |task, t| {
			let (u, first) = (task * ranks_per_task / rank, task * ranks_per_task % rank);
			let (row, lora, _) = updates[u];
			let ranks = lora.rank.saturating_sub(first).min(t.len());
			lora.project(&input[row * in_dim..(row + 1) * in_dim], first, &mut t[..ranks]);
		});
		Ok(())
	})?;
	let runs = threads * out_total.div_ceil(threads * UPDATE_COLUMNS);
	// Sixteen-column steps keep each run's vectors whole.
	let width = out_total.div_ceil(runs).next_multiple_of(16);
	let per_row = out_total.div_ceil(width);
	let cells: Vec<&mut [f32]> =
		values.chunks_mut(out_total).flat_map(|row| row.chunks_mut(width)).collect();
	spin::for_each_part(cells, |cell, y| {
		let (row, start) = (cell / per_row, cell % per_row * width);
		let end = start + y.len();
		let first = updates.partition_point(|u| u.0 < row);
		let this_row = updates.iter().enumerate().skip(first).take_while(|(_, u)| u.0 == row);
		for (u, &(_, lora, first_column)) in this_row {
			let (from, to) = (start.max(first_column), end.min(first_column + lora.out_dim()));
			if from < to {
				let t = &t[u * rank..u * rank + lora.rank];
				lora.expand(t, from - first_column, &mut y[from - start..to - start]);
			}
		}
	});
	Ok(Tensor::from_vec(values, y.shape(), y.device())?)
}

/// `activation(x)`, contiguous: from the fused kernel where the layer's are used.
fn activated(x: &Tensor, activation: Option<Activation>, mode: ForwardMode) -> Result<Tensor> {
	let Some(activation) = activation else { return Ok(x.contiguous()?) };
	if !mode.kernels.fused_on(x.device()) {
		return Ok(composed_activation(x, activation)?.contiguous()?);
	}
	let mut shape = x.dims().to_vec();
	let input_width = shape.pop().unwrap_or(0);
	let values = crate::cpu::read(x, |v| Ok(activation.forward(v, input_width)))?;
	shape.push(activation.output_width(input_width));
	Ok(Tensor::from_vec(values, shape, x.device())?)
}

/// `activation(x)` from candle's ops.
fn composed_activation(x: &Tensor, activation: Activation) -> Result<Tensor> {
	Ok(match activation {
		Activation::SiluGate => {
			let half = x.dim(candle_core::D::Minus1)? / 2;
			(x.narrow(candle_core::D::Minus1, 0, half)?.silu()?
				* x.narrow(candle_core::D::Minus1, half, half)?)?
		},
		Activation::GeluTanh => x.gelu()?,
	})
}

/// Linear layers that read the same input, run as one product over their stacked weights: a
/// family's q/k/v or gate/up projections. The output is the members' outputs side by side,
/// `[…, Σ out]`, in member order. A group of one is a plain layer (GPT-2's fused `c_attn`).
#[derive(Clone, Debug)]
pub struct LinearGroup {
	/// The layers, each with its own path and adapter, and a view of its rows of the weight.
	pub members: Vec<Linear>,
	/// The members' weights stacked by rows.
	weight: FrozenWeight,
	/// The members' biases stacked, zeros for a member without one.
	bias: Option<Tensor>,
	/// The stacked weight's panels for the f16 kernel, packed on first use.
	panels: Arc<PanelCache>,
}

impl LinearGroup {
	/// Stacks `members`, which hold dense weights on `device`, then quantises them when `quant`
	/// is set.
	pub fn new(
		mut members: Vec<Linear>,
		quant: Option<QuantKind>,
		device: &candle_core::Device,
	) -> Result<Self> {
		let weight = match quant {
			Some(kind) => {
				for member in &mut members {
					member.weight = member.weight.clone().quantize(kind)?;
				}
				match members.as_slice() {
					[single] => single.weight.clone(),
					_ => FrozenWeight::Stacked(members.iter().map(|m| m.weight.clone()).collect()),
				}
			},
			None => {
				let dense =
					members.iter().map(|m| m.weight.stored(device)).collect::<Result<Vec<_>>>()?;
				let stacked = Tensor::cat(&dense, 0)?;
				// Each member keeps a view of its rows, so the weights are stored once.
				let mut first = 0;
				for member in &mut members {
					let rows = member.weight.shape()?.0;
					member.weight = FrozenWeight::Dense(stacked.narrow(0, first, rows)?);
					first += rows;
				}
				FrozenWeight::Dense(stacked)
			},
		};
		let bias = if members.iter().any(|m| m.bias.is_some()) {
			let parts = members
				.iter()
				.map(|m| match &m.bias {
					Some(bias) => Ok(bias.clone()),
					None => Ok(Tensor::zeros(m.weight.shape()?.0, DType::F32, device)?),
				})
				.collect::<Result<Vec<_>>>()?;
			Some(Tensor::cat(&parts, 0)?)
		} else {
			None
		};
		Ok(Self { members, weight, bias, panels: Arc::default() })
	}

	/// The stacked layers as one fused op for raw rows, when no member has an adapter.
	pub(crate) fn frozen_op(&self, mode: ForwardMode) -> Option<FusedLinear> {
		let frozen = self.members.iter().all(|m| m.lora.is_none());
		frozen.then(|| fused(&self.weight, &self.bias, &self.panels, 0.0, None, mode))
	}

	/// Applies every member to `x` `[…, in]`: `[…, Σ out]`.
	pub fn forward(&self, x: &Tensor, mode: ForwardMode) -> Result<Tensor> {
		if let Some(rows) = mode.rows.filter(|r| self.members.iter().any(|m| r.adapts(m.index))) {
			let y = self.forward(x, ForwardMode { rows: None, ..mode })?;
			let mut layers = Vec::with_capacity(self.members.len());
			let mut first_column = 0;
			for member in &self.members {
				layers.push((member.index, first_column));
				first_column += member.weight.shape()?.0;
			}
			return add_row_adapters(rows, &layers, x, y);
		}
		if let [single] = self.members.as_slice() {
			return single.forward(x, mode);
		}
		if !mode.kernels.fused_on(x.device()) {
			let outputs =
				self.members.iter().map(|m| m.forward(x, mode)).collect::<Result<Vec<_>>>()?;
			return Ok(Tensor::cat(&outputs, candle_core::D::Minus1)?);
		}
		let (mut branches, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
		let mut scale = 0.0;
		let mut first_column = 0;
		for member in &self.members {
			if let (Some(branch), Some(lora)) =
				(member.branch(first_column, x.elem_count(), mode)?, &member.lora)
			{
				branches.push(branch);
				a.push(lora.a.as_tensor().clone());
				b.push(lora.b.as_tensor().clone());
				// Every adapter of a model shares its settings, so one scale serves the group.
				scale = member.scale();
			}
			first_column += member.weight.shape()?.0;
		}
		let op = fused(&self.weight, &self.bias, &self.panels, scale, branches, mode);
		let x = x.contiguous()?;
		Ok(if a.is_empty() {
			x.apply_op1(op)?
		} else {
			x.apply_op3(&Tensor::cat(&a, 0)?, &Tensor::cat(&b, 0)?, op)?
		})
	}
}

/// The fused op of a frozen `weight` and `bias` with adapter `branches`, set for `mode`.
fn fused(
	weight: &FrozenWeight,
	bias: &Option<Tensor>,
	panels: &Arc<PanelCache>,
	scale: f32,
	branches: impl IntoIterator<Item = Branch>,
	mode: ForwardMode,
) -> FusedLinear {
	FusedLinear::new(weight.clone(), bias.clone(), scale, branches.into_iter().collect())
		.reading_codes(!mode.gradients)
		.in_half(mode.half)
		.with_panels(panels.clone())
}
