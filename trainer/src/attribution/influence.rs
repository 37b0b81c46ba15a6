//! Training-time attribution: how far each training document's gradient pointed the way the
//! probe set's does while the run trained on it (TracIn, Pruthi et al. 2020). Training is
//! unchanged: packed blocks, batched. Only the LoRA parameters have gradients, and each LoRA
//! product's gradient is a sum over rows, so in a scored epoch the backward pass also splits it
//! by the document each row belongs to ([`crate::cpu::segments`]): every document's part of
//! every micro-batch's gradient, for the price of the LoRA products again.
//!
//! As in TracIn, gradients are compared at a few checkpoints: the probes' gradient is taken as
//! each scored epoch begins (evenly spaced from the first, [`AttributionPlan::scored_epochs`]),
//! and within that epoch each document is scored once, as it is trained on. Much as in LESS
//! (Xia et al. 2024), a document's part, scaled to the gradient of its own mean token loss, is
//! preconditioned by the optimiser's second moment at that step
//! ([`crate::train::Preconditioner`] says why not its momentum); it and the probes' gradients
//! are projected to `dim` numbers by a seeded CountSketch and compared by cosine, so a long
//! document does not outweigh a short one by its gradient's length.
//!
//! A document's influence is Σ over the scored micro-batches that trained on it of the learning
//! rate × the cosine of its part's update with each probe's unit gradient. A source's influence
//! is the sum over its documents. Shares split one among the sources of positive influence;
//! negative influence is reported, not paid.

use candle_core::Tensor;

use crate::{
	cpu::segments::SegmentRun,
	data::{self, Block, TokenStream},
	linear::ForwardMode,
	model::Model,
	rng::Rng,
	train::Preconditioner,
	Error, Result,
};

/// How gradients are projected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Projection {
	/// Numbers each gradient is projected to.
	pub dim: usize,
	/// Seed of the projection: which bucket and sign each LoRA parameter gets.
	pub seed: u64,
}

impl Default for Projection {
	fn default() -> Self {
		Self { dim: 8192, seed: 0 }
	}
}

/// A CountSketch of the LoRA parameters: parameter `j` of the adapter (its variables
/// concatenated in `Model::lora_vars` order) adds `±g[j]` to one of `dim` buckets, both drawn
/// from the seed. Inner products are kept in expectation.
#[derive(Clone, Debug)]
pub struct Sketch {
	/// Each parameter's bucket, with its sign in the top bit.
	signed_buckets: Vec<u32>,
	dim: usize,
}

impl Sketch {
	const SIGN: u32 = 1 << 31;

	/// The sketch of `parameters` LoRA parameters.
	pub fn new(projection: Projection, parameters: usize) -> Result<Self> {
		if projection.dim == 0 || projection.dim as u64 >= u64::from(Self::SIGN) {
			return Err(Error::Attribution(format!(
				"the projection needs between 1 and 2³¹ − 1 dimensions, not {}",
				projection.dim
			)));
		}
		let mut rng = Rng::derive(projection.seed, &[0x5ce7c4]);
		let signed_buckets = (0..parameters)
			.map(|_| {
				let word = rng.next_u64();
				((word >> 1) % projection.dim as u64) as u32 | ((word & 1) as u32) << 31
			})
			.collect();
		Ok(Self { signed_buckets, dim: projection.dim })
	}

	/// `gradient` (every LoRA parameter, in order) projected.
	pub fn project(&self, gradient: &[f32]) -> Vec<f32> {
		let mut out = vec![0.0; self.dim];
		self.add(&mut out, 0, gradient);
		out
	}

	/// Adds parameters `first..first + values.len()`, of `values`, to `projected`.
	#[inline]
	fn add(&self, projected: &mut [f32], first: usize, values: &[f32]) {
		for (&signed, &value) in self.signed_buckets[first..first + values.len()].iter().zip(values)
		{
			let flipped = f32::from_bits(value.to_bits() ^ (signed & Self::SIGN));
			projected[(signed & !Self::SIGN) as usize] += flipped;
		}
	}
}

/// `vector` scaled to length one; zero stays zero.
fn unit(mut vector: Vec<f32>) -> Vec<f32> {
	let norm = vector.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
	if norm > 0.0 {
		vector.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
	}
	vector
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
	a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// The gradient of the mean trained-token loss over `blocks` with respect to every LoRA
/// parameter, as candle tensors in `Model::lora_vars` order. Dropout is off.
pub fn gradient(model: &Model, blocks: &[Block]) -> Result<Vec<Tensor>> {
	let tokens: f64 = blocks.iter().map(|b| b.mask.iter().sum::<f32>() as f64).sum();
	if tokens == 0.0 {
		return Err(Error::Attribution("a document has no trained token".into()));
	}
	let mode = ForwardMode { gradients: true, ..ForwardMode::EVAL };
	let mut total: Option<Vec<Tensor>> = None;
	for block in blocks {
		let (inputs, targets, mask) = data::batch(&[block], model.device())?;
		let loss = (model.loss_sum(&inputs, &targets, &mask, mode)? / tokens)?;
		let grads = model.lora_gradients(&loss.backward()?)?;
		total = Some(match total {
			None => grads,
			Some(sum) => {
				sum.iter().zip(&grads).map(|(a, b)| a + b).collect::<candle_core::Result<_>>()?
			},
		});
	}
	total.ok_or_else(|| Error::Attribution("a document has no block".into()))
}

/// Each example's packed blocks, as training packs them: the unit influence is scored on.
/// Examples whose text yields no trained token give no blocks.
pub fn example_blocks(
	examples: &[data::Example],
	tokenizer: &tokenizers::Tokenizer,
	cfg: &crate::config::ModelConfig,
	cutoff_len: usize,
) -> Result<Vec<Vec<Block>>> {
	let pad = cfg.eos_token_id.unwrap_or(0);
	examples
		.iter()
		.map(|example| {
			let stream = data::tokenize(std::slice::from_ref(example), tokenizer, cfg)?;
			Ok(data::pack(&stream, cutoff_len, pad))
		})
		.collect()
}

/// Tensors flattened into one vector, in order.
pub fn flatten(tensors: &[Tensor]) -> Result<Vec<f32>> {
	let mut out = Vec::new();
	for t in tensors {
		out.extend(t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?);
	}
	Ok(out)
}

/// What training-time attribution scores, and when.
#[derive(Clone, Debug)]
pub struct AttributionPlan {
	/// The source of each document.
	pub sources: Vec<u64>,
	/// Where each document begins in the training stream, in order.
	pub starts: Vec<usize>,
	/// The training stream's length in tokens.
	pub stream_len: usize,
	/// The probe set: each probe's blocks.
	pub probes: Vec<Vec<Block>>,
	/// Checkpoints: epochs scored, each with the probes' gradient taken as it begins.
	pub checkpoints: usize,
	/// How gradients are projected.
	pub projection: Projection,
}

/// The documents in one micro-batch: which rows are whose, and how many trained tokens each
/// has there.
#[derive(Clone, Debug, PartialEq)]
pub struct Segments {
	/// Runs of rows of the batch (block after block) by segment.
	pub runs: Vec<SegmentRun>,
	/// The document of each segment.
	pub documents: Vec<usize>,
	/// Each segment's trained tokens in the batch.
	pub tokens: Vec<f64>,
}

impl AttributionPlan {
	/// The plan for `documents` (each a source and its tokens), and the training stream: the
	/// documents one after the other, to be packed as any run packs its stream. Attribution
	/// changes nothing about training.
	pub fn new(
		documents: impl IntoIterator<Item = (u64, TokenStream)>,
		probes: Vec<Vec<Block>>,
		checkpoints: usize,
		projection: Projection,
	) -> (Self, TokenStream) {
		let mut stream = TokenStream::default();
		let (mut sources, mut starts) = (Vec::new(), Vec::new());
		for (source, document) in documents {
			sources.push(source);
			starts.push(stream.ids.len());
			stream.extend(&document);
		}
		let plan =
			Self { sources, starts, stream_len: stream.ids.len(), probes, checkpoints, projection };
		(plan, stream)
	}

	/// The epochs (0-based, of `epochs`) that are scored, evenly spaced from the first: the
	/// probes' gradient is taken as each begins, and every document's part of every step in it
	/// is scored against it (TracIn's checkpoints). Fewer epochs than checkpoints score every
	/// epoch.
	pub fn scored_epochs(&self, epochs: usize) -> Vec<usize> {
		let count = self.checkpoints.max(1);
		let mut scored: Vec<usize> = (0..count).map(|k| epochs * k / count).collect();
		scored.dedup();
		scored
	}

	/// Checks the plan against the run's training `blocks`.
	pub fn check(&self, blocks: &[Block]) -> Result<()> {
		if self.probes.is_empty() {
			return Err(Error::Attribution(
				"the probe set is empty: attribution needs held-out examples or probe questions"
					.into(),
			));
		}
		if let Some(block) = blocks.iter().find(|b| b.start >= self.stream_len) {
			return Err(Error::Attribution(format!(
				"a training block starts at token {}, past the plan's stream of {} tokens",
				block.start, self.stream_len
			)));
		}
		Ok(())
	}

	/// The segments of a micro-batch of `blocks`. A row belongs to the document of the token
	/// it predicts; padding past the stream's end belongs to none.
	pub fn segments(&self, blocks: &[&Block]) -> Segments {
		let mut segments = Segments { runs: Vec::new(), documents: Vec::new(), tokens: Vec::new() };
		let mut row = 0;
		for block in blocks {
			for (i, mask) in block.mask.iter().enumerate() {
				let target = block.start + i + 1;
				if target < self.stream_len {
					let document = self.starts.partition_point(|&s| s <= target).saturating_sub(1);
					let segment = match segments.documents.iter().rposition(|&d| d == document) {
						Some(segment) => segment,
						None => {
							segments.documents.push(document);
							segments.tokens.push(0.0);
							segments.documents.len() - 1
						},
					};
					segments.tokens[segment] += *mask as f64;
					match segments.runs.last_mut() {
						Some(run) if run.segment == segment && run.rows.end == row => {
							run.rows.end += 1
						},
						_ => segments.runs.push(SegmentRun { rows: row..row + 1, segment }),
					}
				}
				row += 1;
			}
		}
		segments
	}

	/// Each probe's unit gradient, projected, with the model as it is.
	pub fn probe_directions(&self, model: &Model, sketch: &Sketch) -> Result<Vec<Vec<f32>>> {
		self.probes
			.iter()
			.map(|blocks| Ok(unit(sketch.project(&flatten(&gradient(model, blocks)?)?))))
			.collect()
	}
}

/// A document's part of one micro-batch's gradient, `parts` (each LoRA variable's, in order),
/// which `scale` turns into the gradient of its own mean token loss, preconditioned by the
/// optimiser's second moment `adam`, projected by `sketch` and scaled to length one.
pub fn sketched_update(
	parts: &[&[f32]],
	scale: f32,
	adam: &Preconditioner,
	sketch: &Sketch,
) -> Vec<f32> {
	const CHUNK: usize = 4096;
	let mut projected = vec![0.0; sketch.dim];
	let mut directions = [0.0f32; CHUNK];
	let mut offset = 0;
	for (var, part) in parts.iter().enumerate() {
		for (c, chunk) in part.chunks(CHUNK).enumerate() {
			let directions = &mut directions[..chunk.len()];
			adam.directions(var, c * CHUNK, chunk, scale, directions);
			sketch.add(&mut projected, offset + c * CHUNK, directions);
		}
		offset += part.len();
	}
	unit(projected)
}

/// Influence accumulated over the checkpoints taken so far.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Influence {
	/// The projection used.
	pub projection: Projection,
	/// The optimiser steps (0-based) before which the probes' gradient was taken: each scored
	/// epoch's first.
	pub checkpoints: Vec<usize>,
	/// Each document's influence on each probe, in document order.
	pub by_probe: Vec<Vec<f64>>,
}

impl Influence {
	/// No checkpoint yet, for `documents` documents and `probes` probes.
	pub fn new(projection: Projection, documents: usize, probes: usize) -> Self {
		Self { projection, checkpoints: Vec::new(), by_probe: vec![vec![0.0; probes]; documents] }
	}

	/// Each document's influence on the probe set: the mean over probes (influence is linear
	/// in the probes' gradient), in document order.
	pub fn documents(&self) -> Vec<f64> {
		self.by_probe.iter().map(|row| row.iter().sum::<f64>() / row.len().max(1) as f64).collect()
	}

	/// Adds one scored part of document `document`: `update` ([`sketched_update`]) against each
	/// probe's unit direction in `probes`, weighted by the step's learning rate `lr`.
	pub fn add_update(&mut self, document: usize, update: &[f32], lr: f64, probes: &[Vec<f32>]) {
		for (score, probe) in self.by_probe[document].iter_mut().zip(probes) {
			*score += lr * dot(update, probe);
		}
	}

	/// Each source's influence on probe `probe` (the sum over its documents), by source.
	pub fn by_source_on(&self, sources: &[u64], probe: usize) -> Vec<(u64, f64)> {
		let mut sums = std::collections::BTreeMap::<u64, f64>::new();
		for (source, row) in sources.iter().zip(&self.by_probe) {
			*sums.entry(*source).or_default() += row[probe];
		}
		sums.into_iter().collect()
	}

	/// Each source's influence (the sum over its documents), by source.
	pub fn by_source(&self, sources: &[u64]) -> Vec<(u64, f64)> {
		let mut sums = std::collections::BTreeMap::<u64, f64>::new();
		for (source, score) in sources.iter().zip(self.documents()) {
			*sums.entry(*source).or_default() += score;
		}
		sums.into_iter().collect()
	}
}

/// The layer a LoRA variable belongs to, from its PEFT name (`….layers.N.…`, `….h.N.…`);
/// variables outside the numbered blocks form a layer of their own.
fn layer_of(name: &str) -> String {
	let parts: Vec<&str> = name.split('.').collect();
	parts
		.windows(2)
		.find(|w| matches!(w[0], "layers" | "h" | "layer") && w[1].parse::<usize>().is_ok())
		.map_or_else(|| "other".to_string(), |w| format!("{}.{}", w[0], w[1]))
}

/// DataInf (Kwon et al. 2024): each document's influence from the gradients of the finished
/// model alone, with no checkpoint. Per layer l, with λ_l a tenth of the documents' mean
/// squared gradient norm, the influence of document k on the probes' loss is
/// `(1/λ_l) · ((1/n) Σ_i c_i g_i − v)ᵀ g_k` with `c_i = vᵀg_i / (λ_l + ‖g_i‖²)` and `v` the
/// probe's gradient; it returns the opposite, so that positive means it lowered the probe's
/// loss, as in-run TracIn does, for each probe and for the probe set. Each layer's gradient is projected by its own
/// CountSketch of `projection.dim` numbers.
pub fn datainf(
	model: &Model,
	documents: &[Vec<Block>],
	probes: &[Vec<Block>],
	projection: Projection,
) -> Result<Influence> {
	if probes.is_empty() {
		return Err(Error::Attribution(
			"the probe set is empty: attribution needs held-out examples or probe questions".into(),
		));
	}
	let vars = model.lora_vars();
	let mut layers: Vec<(String, Vec<usize>)> = Vec::new();
	for (index, (name, _)) in vars.iter().enumerate() {
		let layer = layer_of(name);
		match layers.iter_mut().find(|(l, _)| *l == layer) {
			Some((_, members)) => members.push(index),
			None => layers.push((layer, vec![index])),
		}
	}
	let sketches = layers
		.iter()
		.enumerate()
		.map(|(i, (_, members))| {
			let size = members.iter().map(|&m| vars[m].1.elem_count()).sum();
			Sketch::new(Projection { dim: projection.dim, seed: projection.seed ^ i as u64 }, size)
		})
		.collect::<Result<Vec<_>>>()?;
	// Each gradient, projected layer by layer.
	let project = |blocks: &[Block]| -> Result<Vec<Vec<f32>>> {
		let grads = gradient(model, blocks)?;
		layers
			.iter()
			.zip(&sketches)
			.map(|((_, members), sketch)| {
				let tensors: Vec<Tensor> = members.iter().map(|&m| grads[m].clone()).collect();
				Ok(sketch.project(&flatten(&tensors)?))
			})
			.collect()
	};
	let n = documents.len().max(1) as f64;
	let train = documents.iter().map(|blocks| project(blocks)).collect::<Result<Vec<_>>>()?;
	let probes = probes.iter().map(|blocks| project(blocks)).collect::<Result<Vec<_>>>()?;
	// λ per layer: a tenth of the documents' mean squared gradient norm.
	let norms: Vec<Vec<f64>> =
		train.iter().map(|g| g.iter().map(|layer| dot(layer, layer)).collect()).collect();
	let lambdas: Vec<f64> = (0..layers.len())
		.map(|l| (0.1 * norms.iter().map(|n| n[l]).sum::<f64>() / n).max(1e-12))
		.collect();
	let mut by_probe = vec![vec![0.0; probes.len()]; documents.len()];
	for (j, v) in probes.iter().enumerate() {
		for (l, lambda) in lambdas.iter().enumerate() {
			let mut direction = vec![0.0f64; projection.dim];
			for (g, norm) in train.iter().zip(&norms) {
				let c = dot(&v[l], &g[l]) / (lambda + norm[l]);
				direction.iter_mut().zip(&g[l]).for_each(|(d, x)| *d += c * *x as f64 / n);
			}
			direction.iter_mut().zip(&v[l]).for_each(|(d, x)| *d -= *x as f64);
			for (row, g) in by_probe.iter_mut().zip(&train) {
				let toward: f64 = direction.iter().zip(&g[l]).map(|(d, x)| d * *x as f64).sum();
				row[j] -= toward / lambda;
			}
		}
	}
	Ok(Influence { projection, checkpoints: Vec::new(), by_probe })
}

/// Shares of one among the sources of positive influence, largest first (ties by source);
/// sources of zero or negative influence get none. Empty when no source helped.
pub fn shares(influence: &[(u64, f64)]) -> Vec<(u64, f64)> {
	let total: f64 = influence.iter().map(|(_, s)| s.max(0.0)).sum();
	if total <= 0.0 {
		return Vec::new();
	}
	let mut shares: Vec<(u64, f64)> = influence
		.iter()
		.filter(|(_, s)| *s > 0.0)
		.map(|(source, s)| (*source, s / total))
		.collect();
	shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
	shares
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_sketch_keeps_inner_products_and_is_a_function_of_its_seed() {
		let mut rng = Rng::new(3);
		let a: Vec<f32> = (0..20_000).map(|_| rng.next_f32() - 0.5).collect();
		let mut b = a.clone();
		b.iter_mut().take(10_000).for_each(|x| *x = rng.next_f32() - 0.5);
		let exact = dot(&unit(a.clone()), &unit(b.clone()));
		let sketch = Sketch::new(Projection { dim: 4096, seed: 9 }, a.len()).unwrap();
		let projected = dot(&unit(sketch.project(&a)), &unit(sketch.project(&b)));
		assert!((projected - exact).abs() < 0.05, "{projected} vs {exact}");
		let again = Sketch::new(Projection { dim: 4096, seed: 9 }, a.len()).unwrap();
		assert_eq!(sketch.project(&a), again.project(&a));
		let other = Sketch::new(Projection { dim: 4096, seed: 10 }, a.len()).unwrap();
		assert_ne!(sketch.project(&a), other.project(&a));
		assert!(Sketch::new(Projection { dim: 0, seed: 0 }, 1).is_err());
	}

	#[test]
	fn layers_are_read_from_peft_names() {
		assert_eq!(
			layer_of("base_model.model.model.layers.12.self_attn.q_proj.lora_A.weight"),
			"layers.12"
		);
		assert_eq!(layer_of("base_model.model.transformer.h.3.attn.c_attn.lora_B.weight"), "h.3");
		assert_eq!(layer_of("base_model.model.lm_head.lora_A.weight"), "other");
	}

	#[test]
	fn shares_split_positive_influence_and_report_no_negative_share() {
		let shares = shares(&[(1, 3.0), (2, -1.0), (3, 1.0), (4, 0.0)]);
		assert_eq!(shares, [(1, 0.75), (3, 0.25)]);
		assert!(super::shares(&[(1, -1.0)]).is_empty());
	}
}
