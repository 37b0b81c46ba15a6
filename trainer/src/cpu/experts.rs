//! A mixture-of-experts layer's routed experts in one op, for frozen experts: each expert
//! gathers the rows routed to it, runs its MLP ([`FusedLinear`]s for the stacked gate/up and
//! the activated down projection) and adds its output, times the row's routing weight, onto
//! the residual stream.
//!
//! Backward, with `g` the output's gradient and `yₑ` expert `e`'s output for a row of weight
//! `w`: the weight's gradient is `g · yₑ`, and `w g` goes back through the expert to its input
//! rows, which are added into the input's gradient. The residual gets `g` as it is.
//!
//! candle's ops take eight nodes an expert (gathers, reshapes, a scaling, the two products) and
//! a concatenation and an index-add after them; each gather's backward pass zero-fills and adds
//! a gradient of the whole input, for every expert.

use super::{contiguous, gradient, linear::FusedLinear, read, vector, Saved};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

/// One routed expert: its MLP's two layers, the down projection built
/// [`FusedLinear::after`] the activation.
pub struct RoutedExpert {
	/// The stacked gate/up projection.
	pub gate_up: FusedLinear,
	/// The down projection on the activated gate/up output.
	pub down: FusedLinear,
}

/// Apply with `x.apply_op3(&weights, &residual, op)`: `x` `[rows, hidden]`, `weights` `[rows,
/// per_token]` (the chosen experts' routing weights, in `chosen` order) and `residual` of
/// `rows · hidden` values, all contiguous. The result has the residual's shape.
pub struct RoutedExperts {
	experts: Vec<RoutedExpert>,
	/// Each expert's rows, and the slot of each in its row's choice: `(row, slot)`.
	routes: Vec<Vec<(usize, usize)>>,
	per_token: usize,
	/// Each expert's gate/up output and its MLP's output, from the forward pass.
	saved: Vec<(Saved, Saved)>,
}

impl RoutedExperts {
	/// The op for `experts`, with `chosen` the experts of each row, best first.
	pub fn new(experts: Vec<RoutedExpert>, chosen: &[Vec<usize>]) -> Result<Self> {
		let per_token = chosen.first().map_or(0, Vec::len);
		let mut routes = vec![Vec::new(); experts.len()];
		for (row, choice) in chosen.iter().enumerate() {
			if choice.len() != per_token {
				candle_core::bail!("routed-experts: row {row} chose {choice:?}, not {per_token}")
			}
			for (slot, &e) in choice.iter().enumerate() {
				let Some(route) = routes.get_mut(e) else {
					candle_core::bail!("routed-experts: expert {e} of {}", experts.len())
				};
				route.push((row, slot));
			}
		}
		let saved = experts.iter().map(|_| Default::default()).collect();
		Ok(Self { experts, routes, per_token, saved })
	}

	/// Rows and width of `x`, checked against the other inputs.
	fn dims(&self, x: &Shape, weights: &Shape, residual: &Shape) -> Result<(usize, usize)> {
		let (rows, hidden) = x.dims2()?;
		if weights.dims2()? != (rows, self.per_token)
			|| residual.elem_count() != rows * hidden
			|| self.routes.iter().flatten().any(|&(row, _)| row >= rows)
		{
			candle_core::bail!(
				"routed-experts: x {x:?}, weights {weights:?} and residual {residual:?} do not \
				 fit {} choices a row",
				self.per_token
			)
		}
		Ok((rows, hidden))
	}
}

/// The rows `routes` of `x` (`width` wide), gathered.
fn gather(x: &[f32], width: usize, routes: &[(usize, usize)]) -> Vec<f32> {
	routes.iter().flat_map(|&(row, _)| &x[row * width..][..width]).copied().collect()
}

impl CustomOp3 for RoutedExperts {
	fn name(&self) -> &'static str {
		"routed-experts"
	}

	fn cpu_fwd(
		&self,
		x: &CpuStorage,
		x_layout: &Layout,
		weights: &CpuStorage,
		weights_layout: &Layout,
		residual: &CpuStorage,
		residual_layout: &Layout,
	) -> Result<(CpuStorage, Shape)> {
		let (_, hidden) =
			self.dims(x_layout.shape(), weights_layout.shape(), residual_layout.shape())?;
		let x = contiguous(x, x_layout, self.name())?;
		let weights = contiguous(weights, weights_layout, self.name())?;
		let mut out = contiguous(residual, residual_layout, self.name())?.to_vec();
		for ((expert, routes), (gate_up_saved, output_saved)) in
			self.experts.iter().zip(&self.routes).zip(&self.saved)
		{
			if routes.is_empty() {
				continue;
			}
			let gate_up = expert.gate_up.frozen_rows(&gather(x, hidden, routes), routes.len())?;
			let y = expert.down.frozen_rows(&gate_up, routes.len())?;
			for (&(row, slot), y) in routes.iter().zip(y.chunks_exact(hidden)) {
				let w = weights[row * self.per_token + slot];
				vector::add_scaled(&mut out[row * hidden..][..hidden], w, y);
			}
			gate_up_saved.put(gate_up)?;
			output_saved.put(y)?;
		}
		Ok((CpuStorage::F32(out), residual_layout.shape().clone()))
	}

	fn bwd(
		&self,
		x: &Tensor,
		weights: &Tensor,
		residual: &Tensor,
		_res: &Tensor,
		grad: &Tensor,
	) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
		let (rows, hidden) = self.dims(x.shape(), weights.shape(), residual.shape())?;
		let mut dx = vec![0f32; rows * hidden];
		let mut d_weights = vec![0f32; rows * self.per_token];
		read(weights, |weights| {
			read(grad, |g| {
				for ((expert, routes), (gate_up_saved, output_saved)) in
					self.experts.iter().zip(&self.routes).zip(&self.saved)
				{
					if routes.is_empty() {
						continue;
					}
					let (gate_up, y) = (gate_up_saved.take()?, output_saved.take()?);
					if y.len() != routes.len() * hidden {
						candle_core::bail!(
							"routed-experts: the backward pass ran without its forward pass"
						)
					}
					let mut d_y = Vec::with_capacity(y.len());
					for (&(row, slot), y) in routes.iter().zip(y.chunks_exact(hidden)) {
						let g = &g[row * hidden..][..hidden];
						let at = row * self.per_token + slot;
						d_weights[at] = vector::dot(g, y);
						d_y.extend(g.iter().map(|g| weights[at] * g));
					}
					let d_gate_up =
						expert.down.frozen_rows_gradient(&gate_up, &d_y, routes.len())?;
					let d_input =
						expert.gate_up.frozen_rows_gradient(&[], &d_gate_up, routes.len())?;
					for (&(row, _), d) in routes.iter().zip(d_input.chunks_exact(hidden)) {
						vector::add_scaled(&mut dx[row * hidden..][..hidden], 1.0, d);
					}
				}
				Ok(())
			})
		})?;
		let d_residual = match residual.track_op() {
			true => Some(grad.reshape(residual.shape())?),
			false => None,
		};
		Ok((gradient(x, dx)?, gradient(weights, d_weights)?, d_residual))
	}
}
