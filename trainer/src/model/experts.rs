//! DeepSeek's mixture-of-experts layer (DeepSeekMoE; Dai et al., 2024), as transformers'
//! `deepseek_v2` and `deepseek_v3` route it.
//!
//! A frozen router scores every routed expert for each token (a softmax in V2, sigmoids in
//! V3); the token goes to its top `per_token`, each output weighted by its score, and the
//! weighted sum is scaled by `routed_scaling_factor`. Shared experts, held as one wider MLP,
//! see every token. V2 may limit the choice to the groups of experts whose best score ranks
//! in the top `topk_group`; V3 always does, ranking groups by their two best scores after a
//! per-expert correction bias that steers the choice but not the weights.
//!
//! The choice is made on the scores' values, with ties going to the lower index, so it is
//! deterministic. Gradients flow through the chosen weights to the router's input and through
//! each chosen expert to its adapters; an expert no token chose computes nothing and so gets
//! no gradient at all.

use super::FeedForward;
use crate::{
	config::{Experts, Routing},
	cpu::{
		experts::{RoutedExpert, RoutedExperts},
		mlp::Activation,
	},
	linear::{ForwardMode, Linear, LinearGroup, RowAdapters},
	Result,
};
use candle_core::{DType, Tensor, D};
use candle_nn::ops;

/// One routed expert: a SwiGLU MLP.
#[derive(Clone, Debug)]
pub(super) struct Expert {
	pub(super) gate_up: LinearGroup,
	pub(super) down: Linear,
}

impl Expert {
	fn forward(&self, x: &Tensor, mode: ForwardMode) -> Result<Tensor> {
		self.down.forward_activated(&self.gate_up.forward(x, mode)?, Activation::SiluGate, mode)
	}
}

/// One block's mixture of experts.
#[derive(Clone, Debug)]
pub(super) struct MixtureOfExperts {
	/// `mlp.gate.weight`, `[routed, hidden]`.
	pub(super) router: Tensor,
	/// V3's `e_score_correction_bias`, `[routed]`.
	pub(super) correction: Option<Vec<f32>>,
	pub(super) experts: Vec<Expert>,
	/// The shared experts, as one MLP.
	pub(super) shared: FeedForward,
	pub(super) cfg: Experts,
}

impl MixtureOfExperts {
	/// `residual` plus the layer's output for `x` `[batch, seq, hidden]`.
	pub(super) fn forward(
		&self,
		residual: &Tensor,
		x: &Tensor,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let (b, s, h) = x.dims3()?;
		let rows = b * s;
		let flat = x.reshape((rows, h))?;
		let logits = flat.matmul(&self.router.t()?)?;
		let scores = match self.cfg.routing {
			Routing::Softmax { .. } => ops::softmax(&logits, D::Minus1)?,
			Routing::Sigmoid { .. } => (logits.neg()?.exp()? + 1.0)?.recip()?,
		};
		let chosen = self.choose(&scores.to_vec2::<f32>()?);
		if let Some(log) = mode.routing_log {
			log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(chosen.clone());
		}
		let k = self.cfg.per_token;
		let picked: Vec<u32> = chosen.iter().flatten().map(|&e| e as u32).collect();
		let mut weights = scores.gather(&Tensor::from_vec(picked, (rows, k), x.device())?, 1)?;
		if let Routing::Sigmoid { normalize: true } = self.cfg.routing {
			weights = weights.broadcast_div(&(weights.sum_keepdim(1)? + 1e-20)?)?;
		}
		let weights = (weights * self.cfg.scaling)?;
		if let Some(op) = self.fused(&chosen, x, mode)? {
			let residual = residual.contiguous()?;
			return self.shared.forward(&flat.apply_op3(&weights, &residual, op)?, x, mode);
		}
		let weights = weights.flatten_all()?;
		// Every expert's weighted rows, and the token each came from: added into the output in
		// one `index_add` after the loop. (One per expert made the backward pass zero and add a
		// full `[rows, hidden]` gradient for each.)
		let (mut outputs, mut sources) = (Vec::new(), Vec::new());
		for (e, expert) in self.experts.iter().enumerate() {
			// The rows that chose expert `e`, and where each one's weight sits.
			let (tokens, slots): (Vec<u32>, Vec<u32>) = chosen
				.iter()
				.enumerate()
				.filter_map(|(row, experts)| {
					let slot = experts.iter().position(|&c| c == e)?;
					Some((row as u32, (row * k + slot) as u32))
				})
				.unzip();
			if tokens.is_empty() {
				continue;
			}
			let adapters = mode.rows.map(|rows| rows.select(&tokens));
			let expert_mode =
				ForwardMode { rows: adapters.as_ref(), source_rows: Some(&tokens), ..mode };
			let count = tokens.len();
			sources.extend_from_slice(&tokens);
			let tokens = Tensor::new(tokens.as_slice(), x.device())?;
			let input = flat.index_select(&tokens, 0)?.unsqueeze(0)?;
			let output = expert.forward(&input, expert_mode)?.squeeze(0)?;
			let weight = weights.index_select(&Tensor::from_vec(slots, count, x.device())?, 0)?;
			outputs.push(output.broadcast_mul(&weight.unsqueeze(1)?)?);
		}
		let sources = Tensor::new(sources.as_slice(), x.device())?;
		let routed = Tensor::zeros((rows, h), DType::F32, x.device())?.index_add(
			&sources,
			&Tensor::cat(&outputs, 0)?,
			0,
		)?;
		self.shared.forward(&(residual + routed.reshape((b, s, h))?)?, x, mode)
	}

	/// The routed experts as one op, when every expert is frozen and the CPU kernels run
	/// without per-row adapters.
	fn fused(
		&self,
		chosen: &[Vec<usize>],
		x: &Tensor,
		mode: ForwardMode,
	) -> Result<Option<RoutedExperts>> {
		if !mode.kernels.fused_on(x.device()) || mode.rows.is_some() {
			return Ok(None);
		}
		let experts = self.experts.iter().map(|expert| {
			Some(RoutedExpert {
				gate_up: expert.gate_up.frozen_op(mode)?,
				down: expert.down.frozen_op(mode)?.after(Activation::SiluGate),
			})
		});
		match experts.collect::<Option<Vec<_>>>() {
			Some(experts) => Ok(Some(RoutedExperts::new(experts, chosen)?)),
			None => Ok(None),
		}
	}

	/// Each row's experts, best first, from its `scores`.
	fn choose(&self, scores: &[Vec<f32>]) -> Vec<Vec<usize>> {
		let cfg = &self.cfg;
		let per_group = cfg.routed / cfg.groups;
		scores
			.iter()
			.map(|row| {
				// What picks the experts: V3 adds its correction bias.
				let biased: Vec<f32> = match &self.correction {
					Some(bias) => row.iter().zip(bias).map(|(s, b)| s + b).collect(),
					None => row.clone(),
				};
				let group_limited =
					!matches!(cfg.routing, Routing::Softmax { group_limited: false });
				let allowed: Vec<bool> = if group_limited && cfg.topk_groups < cfg.groups {
					let group_scores: Vec<f32> = biased
						.chunks(per_group)
						.map(|group| match cfg.routing {
							Routing::Sigmoid { .. } => {
								best(group, 2).iter().map(|&i| group[i]).sum::<f32>()
							},
							Routing::Softmax { .. } => {
								group.iter().copied().fold(f32::MIN, f32::max)
							},
						})
						.collect();
					let kept = best(&group_scores, cfg.topk_groups);
					(0..cfg.routed).map(|e| kept.contains(&(e / per_group))).collect()
				} else {
					vec![true; cfg.routed]
				};
				let candidates: Vec<f32> = biased
					.iter()
					.zip(&allowed)
					.map(|(&s, &ok)| if ok { s } else { f32::NEG_INFINITY })
					.collect();
				best(&candidates, cfg.per_token)
			})
			.collect()
	}
}

/// The indices of the `k` largest values, largest first; ties go to the lower index.
fn best(values: &[f32], k: usize) -> Vec<usize> {
	let mut order: Vec<usize> = (0..values.len()).collect();
	order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
	order.truncate(k);
	order
}

impl RowAdapters<'_> {
	/// The groups of the rows `rows` (ascending) of this batch, renumbered from 0: the row
	/// adapters of an expert's gathered input.
	pub(crate) fn select(&self, rows: &[u32]) -> RowAdapters<'_> {
		let mut out = RowAdapters::default();
		for (i, &row) in rows.iter().enumerate() {
			let row = row as usize;
			let Some(&(_, _, adapter)) =
				self.groups.iter().find(|(first, count, _)| (*first..first + count).contains(&row))
			else {
				continue;
			};
			match out.groups.last_mut() {
				Some((first, count, last))
					if std::ptr::eq(*last, adapter) && *first + *count == i =>
				{
					*count += 1
				},
				_ => out.groups.push((i, 1, adapter)),
			}
		}
		out
	}
}
