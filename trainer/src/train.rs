//! The training loop.
//!
//! Deterministic from the seed: the order of blocks in each epoch, every dropout mask and the
//! adapters' initial `A` are pure functions of the seed and the step (see [`crate::rng`]).
//! A checkpoint holds the adapter, AdamW's moments and the step, so a run killed after a
//! checkpoint and resumed writes the same adapter bytes as a run that never stopped.
//!
//! Per optimiser step: `grad_accum` micro-batches of `batch_size` blocks; the loss is the mean
//! over the step's trained tokens; the gradient's global norm is clipped; AdamW (Loshchilov and
//! Hutter, 2019, as PyTorch implements it) updates `A` and `B` with the scheduled learning rate
//! (linear warm-up, then cosine or linear decay, as HF's `get_*_schedule_with_warmup`).

use crate::attribution::influence::{sketched_update, Sketch};
pub use crate::attribution::influence::{AttributionPlan, Influence};
use crate::{
	adapter::{self, PeftConfig},
	config::ModelConfig,
	cpu::segments,
	data::{self, Block},
	linear::ForwardMode,
	model::Model,
	rng::Rng,
	Error, Result,
};
use candle_core::{Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::{
	io::Write,
	path::{Path, PathBuf},
	sync::atomic::{AtomicBool, Ordering},
	time::Instant,
};

/// Learning-rate decay after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
	/// Half a cosine from the peak to zero.
	Cosine,
	/// A straight line from the peak to zero.
	Linear,
	/// The peak throughout.
	Constant,
}

/// The run's hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
	/// Peak learning rate.
	pub learning_rate: f64,
	/// Passes over the dataset.
	pub epochs: usize,
	/// Blocks per micro-batch.
	pub batch_size: usize,
	/// Micro-batches per optimiser step.
	pub grad_accum: usize,
	/// Tokens per block.
	pub cutoff_len: usize,
	/// Steps of linear warm-up.
	pub warmup_steps: usize,
	/// Decay after warm-up.
	pub schedule: Schedule,
	/// AdamW's decoupled weight decay.
	pub weight_decay: f64,
	/// Clip the gradient's global L2 norm to this.
	pub max_grad_norm: f64,
	/// AdamW's β₁.
	pub beta1: f64,
	/// AdamW's β₂.
	pub beta2: f64,
	/// AdamW's ε.
	pub eps: f64,
	/// Seed of every random choice.
	pub seed: u64,
	/// Save a checkpoint every this many steps (0: never).
	pub save_every: usize,
	/// Stop after this many steps, if fewer than the epochs give.
	pub max_steps: Option<usize>,
}

impl Default for TrainConfig {
	fn default() -> Self {
		Self {
			learning_rate: 2e-4,
			epochs: 3,
			batch_size: 4,
			grad_accum: 1,
			cutoff_len: 256,
			warmup_steps: 0,
			schedule: Schedule::Cosine,
			weight_decay: 0.0,
			max_grad_norm: 1.0,
			beta1: 0.9,
			beta2: 0.999,
			eps: 1e-8,
			seed: 42,
			save_every: 0,
			max_steps: None,
		}
	}
}

impl TrainConfig {
	/// Checks every field for `model` with the chain's job rule (and AdamW's constants),
	/// naming the first that is out of range.
	pub fn validate(&self, model: &ModelConfig) -> Result<()> {
		crate::job::check_train(self, model)
	}

	/// The learning rate at `step` (0-based) of `total`.
	pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
		if step < self.warmup_steps {
			return self.learning_rate * step as f64 / self.warmup_steps.max(1) as f64;
		}
		let progress = (step - self.warmup_steps) as f64
			/ (total.saturating_sub(self.warmup_steps)).max(1) as f64;
		self.learning_rate
			* match self.schedule {
				Schedule::Constant => 1.0,
				Schedule::Linear => (1.0 - progress).max(0.0),
				Schedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
			}
	}
}

/// A block length must hold an input and a target and fit the model's positions.
pub fn check_cutoff(cutoff_len: usize, model: &ModelConfig) -> Result<()> {
	let positions = u32::try_from(model.max_positions).unwrap_or(u32::MAX);
	provenant_jobspec::check_cutoff(u32::try_from(cutoff_len).unwrap_or(u32::MAX), positions)
		.map_err(crate::job::refused)
}

/// Which blocks each optimiser step trains on.
#[derive(Clone, Debug)]
pub struct Plan {
	/// Micro-batches of block indices, in order.
	pub micro_batches: Vec<Vec<usize>>,
	/// Optimiser steps.
	pub steps: usize,
}

impl Plan {
	/// Shuffles the blocks once per epoch with the seed and cuts micro-batches.
	pub fn new(blocks: usize, cfg: &TrainConfig) -> Self {
		let mut micro_batches = Vec::new();
		for epoch in 0..cfg.epochs {
			let mut order: Vec<usize> = (0..blocks).collect();
			Rng::derive(cfg.seed, &[0xDA7A, epoch as u64]).shuffle(&mut order);
			micro_batches.extend(order.chunks(cfg.batch_size).map(<[usize]>::to_vec));
		}
		let mut steps = micro_batches.len().div_ceil(cfg.grad_accum);
		if let Some(max) = cfg.max_steps {
			steps = steps.min(max);
		}
		Self { micro_batches, steps }
	}

	/// The micro-batches of step `step`.
	pub fn step(&self, step: usize, grad_accum: usize) -> &[Vec<usize>] {
		let start = step * grad_accum;
		&self.micro_batches[start..(start + grad_accum).min(self.micro_batches.len())]
	}
}

/// Sum of the masked token losses of one micro-batch, and its trained-token count.
pub fn masked_loss_sum(
	model: &Model,
	blocks: &[&Block],
	mode: ForwardMode,
) -> Result<(Tensor, f64)> {
	let (inputs, targets, mask) = data::batch(blocks, model.device())?;
	let tokens = mask.sum_all()?.to_scalar::<f32>()? as f64;
	Ok((model.loss_sum(&inputs, &targets, &mask, mode)?, tokens))
}

/// Mean loss per trained token over `blocks`, without gradients.
pub fn evaluate(model: &Model, blocks: &[Block], batch_size: usize) -> Result<f64> {
	let (mut total, mut tokens) = (0.0, 0.0);
	for chunk in blocks.chunks(batch_size.max(1)) {
		let refs: Vec<&Block> = chunk.iter().collect();
		let (sum, n) = masked_loss_sum(model, &refs, ForwardMode::EVAL)?;
		total += sum.to_scalar::<f32>()? as f64;
		tokens += n;
	}
	Ok(if tokens > 0.0 { total / tokens } else { f64::NAN })
}

/// AdamW over the adapter's variables, with state that can be saved and restored exactly.
pub struct AdamW {
	vars: Vec<(String, Var)>,
	first: Vec<Tensor>,
	second: Vec<Tensor>,
	/// Updates applied so far.
	pub t: u64,
}

impl AdamW {
	/// Zero moments for `vars`.
	pub fn new(vars: Vec<(String, Var)>) -> Result<Self> {
		let zeros = |v: &Var| v.as_tensor().zeros_like();
		Ok(Self {
			first: vars.iter().map(|(_, v)| zeros(v)).collect::<candle_core::Result<_>>()?,
			second: vars.iter().map(|(_, v)| zeros(v)).collect::<candle_core::Result<_>>()?,
			vars,
			t: 0,
		})
	}

	/// One update with gradients `grads` (same order as the variables).
	pub fn step(&mut self, grads: &[Tensor], lr: f64, cfg: &TrainConfig) -> Result<()> {
		self.t += 1;
		for (i, (_, var)) in self.vars.iter().enumerate() {
			let (m, v) = self.moments(i, &grads[i], cfg)?;
			let p = var.as_tensor().detach();
			let decayed = (&p * (1.0 - lr * cfg.weight_decay))?;
			let update = direction(&m, &v, self.t, cfg)?;
			var.set(&(decayed - (update * lr)?)?)?;
			self.first[i] = m;
			self.second[i] = v;
		}
		Ok(())
	}

	/// The second moments as plain numbers, to precondition many gradients at the coming step.
	pub fn preconditioner(&self, cfg: &TrainConfig) -> Result<Preconditioner> {
		Ok(Preconditioner {
			second: self
				.second
				.iter()
				.map(|t| t.flatten_all()?.to_vec1::<f32>())
				.collect::<candle_core::Result<Vec<_>>>()?,
			beta2: cfg.beta2 as f32,
			eps: cfg.eps as f32,
			bias2: (1.0 - cfg.beta2.powi(self.t as i32 + 1)) as f32,
		})
	}

	/// Variable `i`'s first and second moments after gradient `g`.
	fn moments(&self, i: usize, g: &Tensor, cfg: &TrainConfig) -> Result<(Tensor, Tensor)> {
		let (b1, b2) = (cfg.beta1, cfg.beta2);
		let m = ((&self.first[i] * b1)? + (g * (1.0 - b1))?)?;
		let v = ((&self.second[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
		Ok((m, v))
	}

	fn state_tensors(&self) -> Vec<(String, Tensor)> {
		self.vars
			.iter()
			.zip(self.first.iter().zip(&self.second))
			.flat_map(|((name, _), (m, v))| {
				[(format!("{name}.exp_avg"), m.clone()), (format!("{name}.exp_avg_sq"), v.clone())]
			})
			.collect()
	}
}

/// Adam's bias-corrected update m̂ / (√v̂ + ε) at update `t` (1-based).
fn direction(m: &Tensor, v: &Tensor, t: u64, cfg: &TrainConfig) -> Result<Tensor> {
	let bias1 = 1.0 - cfg.beta1.powi(t as i32);
	let bias2 = 1.0 - cfg.beta2.powi(t as i32);
	Ok(((m / bias1)? / ((v / bias2)?.sqrt()? + cfg.eps)?)?)
}

/// AdamW's second moments before a step, read once to precondition every document's gradient
/// part of that step.
///
/// LESS (Xia et al. 2024) scores Adam's update m̂ / (√v̂ + ε) with the example's gradient
/// mixed into the moments. The first moment, though, is mostly the momentum of earlier
/// steps, the same for every document, which drowns out what each one adds. A gradient `g`
/// enters the first moment with weight (1 − β₁) and stays there with β₁ a step, so over the
/// steps that follow it moves the parameters by (1 − β₁) Σ β₁ᵏ · g / (√v̂ + ε) ≈ g / (√v̂ + ε)
/// in all: that is the direction scored here.
pub struct Preconditioner {
	second: Vec<Vec<f32>>,
	beta2: f32,
	eps: f32,
	bias2: f32,
}

impl Preconditioner {
	/// Writes into `out` the direction of each element of variable `var` from `first` on, given
	/// its gradient `scale · g`: `d` = g / (√v̂ + ε), v̂ the bias-corrected second moment with `g`
	/// added.
	pub fn directions(&self, var: usize, first: usize, g: &[f32], scale: f32, out: &mut [f32]) {
		let second = &self.second[var][first..first + g.len()];
		for ((d, &g), &v) in out.iter_mut().zip(g).zip(second) {
			let g = g * scale;
			let v = self.beta2 * v + (1.0 - self.beta2) * g * g;
			*d = g / ((v / self.bias2).sqrt() + self.eps);
		}
	}
}

/// One line of the progress log (`progress.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Progress {
	/// 1-based optimiser step.
	pub step: usize,
	/// Steps in the run.
	pub total_steps: usize,
	/// Epoch the step's first micro-batch belongs to, fractional.
	pub epoch: f64,
	/// Mean loss per trained token in this step.
	pub loss: f64,
	/// Learning rate used.
	pub lr: f64,
	/// Gradient norm before clipping.
	pub grad_norm: f64,
	/// Tokens (inputs, padding excluded) per second in this step.
	pub tokens_per_s: f64,
	/// Seconds since the run (or the resumed run) began.
	pub elapsed_s: f64,
	/// Mean loss per trained token on the held-out blocks after this step, on the steps the
	/// run evaluates at ([`Evaluation`]).
	#[serde(default, skip_serializing_if = "Option::is_none")]
	pub eval_loss: Option<f64>,
}

/// Held-out blocks to measure the loss on as the run goes: the eval-loss curve.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
	/// Packed held-out blocks.
	pub blocks: Vec<Block>,
	/// Points on the curve: the run evaluates every `steps / points` steps, and always after
	/// its last (so 0 gives only the final eval loss).
	pub points: usize,
}

impl Evaluation {
	/// Whether the run evaluates after step `step` (1-based) of `total`.
	pub fn due(&self, step: usize, total: usize) -> bool {
		if self.blocks.is_empty() {
			return false;
		}
		step == total || (self.points > 0 && step.is_multiple_of((total / self.points).max(1)))
	}
}

/// What `trainer_state.json` records in a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct CheckpointState {
	step: usize,
	adam_t: u64,
	/// sha256 of the run's identity: train config, adapter config, data.
	run: String,
}

/// Everything a run needs.
pub struct Run<'a> {
	/// The model with fresh adapters.
	pub model: &'a Model,
	/// The adapter's PEFT config, written with it.
	pub peft: PeftConfig,
	/// Hyper-parameters.
	pub config: TrainConfig,
	/// Packed training blocks.
	pub blocks: Vec<Block>,
	/// Where the adapter, checkpoints and logs go.
	pub output: PathBuf,
	/// Resume from this checkpoint directory.
	pub resume: Option<PathBuf>,
	/// Draw a progress bar on stdout.
	pub progress_bar: bool,
	/// Training-time attribution to take as the run goes, if any.
	pub attribution: Option<AttributionPlan>,
	/// Held-out data to evaluate on as the run goes; it changes nothing that is trained.
	pub evaluation: Evaluation,
	/// Checked before each step: once raised, the run ends with [`Error::Stopped`] and saves
	/// no adapter (its last checkpoint stays).
	pub stop: Option<&'a AtomicBool>,
}

/// The outcome of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
	/// sha256 of `adapter_model.safetensors`.
	pub adapter_sha256: String,
	/// Steps run in total.
	pub steps: usize,
	/// Mean loss of the last step.
	pub final_loss: f64,
	/// Loss on the held-out blocks after the last step, when the run had any.
	pub eval_loss: Option<f64>,
	/// Tokens trained on in this process.
	pub tokens: usize,
	/// Wall-clock seconds in this process.
	pub seconds: f64,
	/// Training-time attribution, when the run was asked for it.
	pub attribution: Option<Influence>,
	/// Seconds of this process spent scoring blocks and taking the probes' gradients (not
	/// counting that an attributed run trains each block on its own).
	pub attribution_seconds: f64,
}

/// The directory of the checkpoint after `step`.
pub fn checkpoint_dir(output: &Path, step: usize) -> PathBuf {
	output.join(format!("checkpoint-{step}"))
}

/// The newest checkpoint in `output`, if any.
pub fn latest_checkpoint(output: &Path) -> Option<PathBuf> {
	std::fs::read_dir(output)
		.ok()?
		.filter_map(|e| e.ok())
		.filter_map(|e| {
			let name = e.file_name().to_string_lossy().into_owned();
			let step: usize = name.strip_prefix("checkpoint-")?.parse().ok()?;
			e.path().join("trainer_state.json").exists().then_some((step, e.path()))
		})
		.max_by_key(|(step, _)| *step)
		.map(|(_, path)| path)
}

fn run_identity(run: &Run) -> String {
	use sha2::{Digest, Sha256};
	let mut hasher = Sha256::new();
	hasher.update(serde_json::to_vec(&run.config).expect("serialisable"));
	hasher.update(serde_json::to_vec(&run.peft).expect("serialisable"));
	for block in &run.blocks {
		for id in &block.inputs {
			hasher.update(id.to_le_bytes());
		}
		for m in &block.mask {
			hasher.update(m.to_le_bytes());
		}
	}
	adapter::hex(&hasher.finalize())
}

/// The influence so far, kept with each checkpoint so a resumed run keeps it.
const ATTRIBUTION_FILE: &str = "attribution.json";

fn save_checkpoint(
	run: &Run,
	adam: &AdamW,
	step: usize,
	identity: &str,
	influence: Option<&Influence>,
	probes: Option<&ProbeDirections>,
) -> Result<()> {
	let dir = checkpoint_dir(&run.output, step);
	adapter::save(run.model, &run.peft, &dir)?;
	if let Some(influence) = influence {
		let path = dir.join(ATTRIBUTION_FILE);
		std::fs::write(&path, serde_json::to_vec(influence).expect("serialisable"))
			.map_err(Error::io(&path))?;
	}
	if let Some(probes) = probes {
		probes.save(&dir)?;
	}
	adapter::save_tensors(&adam.state_tensors(), &dir.join("optimizer.safetensors"))?;
	let state = CheckpointState { step, adam_t: adam.t, run: identity.to_string() };
	let path = dir.join("trainer_state.json");
	adapter::write_atomically(&path, |p| {
		std::fs::write(p, serde_json::to_string_pretty(&state).expect("serialisable"))
			.map_err(Error::io(p))
	})
}

/// The probes' projected unit gradients for one scored epoch. A checkpoint keeps them, so a
/// run resumed inside a scored epoch scores against the same directions as an unbroken one.
struct ProbeDirections {
	epoch: usize,
	directions: Vec<Vec<f32>>,
}

impl ProbeDirections {
	const FILE: &str = "probe_directions.bin";

	/// `epoch`, the probe count and the dimension as u64, then the values, little-endian.
	fn save(&self, dir: &Path) -> Result<()> {
		let dim = self.directions.first().map_or(0, Vec::len);
		let mut bytes = Vec::with_capacity(24 + 4 * dim * self.directions.len());
		for word in [self.epoch, self.directions.len(), dim] {
			bytes.extend((word as u64).to_le_bytes());
		}
		bytes.extend(self.directions.iter().flatten().flat_map(|x| x.to_le_bytes()));
		let path = dir.join(Self::FILE);
		std::fs::write(&path, bytes).map_err(Error::io(&path))
	}

	fn load(dir: &Path) -> Result<Self> {
		let path = dir.join(Self::FILE);
		let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
		let word = |i: usize| -> Option<usize> {
			Some(u64::from_le_bytes(bytes.get(8 * i..8 * i + 8)?.try_into().ok()?) as usize)
		};
		let bad = || Error::Resume { path: path.clone(), reason: "a truncated file".into() };
		let (epoch, count, dim) =
			(word(0).ok_or_else(bad)?, word(1).ok_or_else(bad)?, word(2).ok_or_else(bad)?);
		let values = bytes.get(24..).filter(|v| v.len() == 4 * count * dim).ok_or_else(bad)?;
		let values: Vec<f32> = values
			.chunks_exact(4)
			.map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
			.collect();
		let directions = values.chunks(dim.max(1)).map(<[f32]>::to_vec).take(count).collect();
		Ok(Self { epoch, directions })
	}
}

fn load_checkpoint(run: &Run, adam: &mut AdamW, dir: &Path, identity: &str) -> Result<usize> {
	let bad = |reason: String| Error::Resume { path: dir.to_path_buf(), reason };
	let text = std::fs::read_to_string(dir.join("trainer_state.json"))
		.map_err(|e| bad(format!("no trainer_state.json ({e})")))?;
	let state: CheckpointState = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
	if state.run != identity {
		return Err(
			bad("it was made with other hyper-parameters, adapter settings or data".into()),
		);
	}
	adapter::load_weights(run.model, dir, run.model.device())?;
	let tensors =
		candle_core::safetensors::load(dir.join("optimizer.safetensors"), run.model.device())
			.map_err(|e| bad(format!("optimizer.safetensors: {e}")))?;
	for (i, (name, _)) in adam.vars.iter().enumerate() {
		let get = |suffix: &str| {
			tensors
				.get(&format!("{name}.{suffix}"))
				.cloned()
				.ok_or_else(|| bad(format!("no {suffix} for {name}")))
		};
		adam.first[i] = get("exp_avg")?;
		adam.second[i] = get("exp_avg_sq")?;
	}
	adam.t = state.adam_t;
	Ok(state.step)
}

fn progress_bar(step: usize, total: usize, p: &Progress) {
	const WIDTH: usize = 30;
	let filled = WIDTH * step / total.max(1);
	print!(
		"\r[{}{}] {step}/{total}  loss {:.4}  lr {:.2e}  {:.0} tok/s  {:.0}s ",
		"=".repeat(filled),
		" ".repeat(WIDTH - filled),
		p.loss,
		p.lr,
		p.tokens_per_s,
		p.elapsed_s
	);
	let _ = std::io::stdout().flush();
}

/// Trains, checkpoints, and writes the final adapter into `run.output`.
pub fn train(run: Run) -> Result<Summary> {
	let cfg = &run.config;
	if run.blocks.is_empty() {
		return Err(Error::hyper("cutoff_len", "the dataset yields no block with a trained token"));
	}
	std::fs::create_dir_all(&run.output).map_err(Error::io(&run.output))?;
	let plan = Plan::new(run.blocks.len(), cfg);
	let vars = run.model.lora_vars();
	let routed = run.model.routed_expert_vars();
	// What a routed expert that no token chose contributes to a document's gradient.
	let unrouted: Vec<Vec<f32>> = vars
		.iter()
		.map(|(_, var)| match routed.contains(&var.as_tensor().id()) {
			true => vec![0.0; var.elem_count()],
			false => Vec::new(),
		})
		.collect();
	let mut adam = AdamW::new(vars.clone())?;
	let identity = run_identity(&run);
	let first_step = match &run.resume {
		Some(dir) => load_checkpoint(&run, &mut adam, dir, &identity)?,
		None => 0,
	};
	let scored_epochs =
		run.attribution.as_ref().map(|a| a.scored_epochs(cfg.epochs)).unwrap_or_default();
	let sketch = match &run.attribution {
		Some(a) => {
			a.check(&run.blocks)?;
			Some(Sketch::new(a.projection, vars.iter().map(|(_, v)| v.elem_count()).sum())?)
		},
		None => None,
	};
	// The probes' directions and the scored epoch they were taken for, kept across a resume.
	let mut probes: Option<ProbeDirections> =
		run.resume.as_ref().and_then(|dir| ProbeDirections::load(dir).ok());
	let mut influence = run.attribution.as_ref().map(|a| {
		let saved = run.resume.as_ref().and_then(|dir| {
			let text = std::fs::read(dir.join(ATTRIBUTION_FILE)).ok()?;
			serde_json::from_slice::<Influence>(&text).ok()
		});
		saved.unwrap_or_else(|| Influence::new(a.projection, a.sources.len(), a.probes.len()))
	});
	let mut attribution_seconds = 0.0;
	let log_path = run.output.join("progress.jsonl");
	let mut log = std::fs::OpenOptions::new()
		.create(true)
		.append(first_step > 0)
		.write(true)
		.truncate(first_step == 0)
		.open(&log_path)
		.map_err(Error::io(&log_path))?;
	let started = Instant::now();
	let (mut tokens_total, mut final_loss, mut final_eval) = (0usize, f64::NAN, None);
	let micro_per_epoch = run.blocks.len().div_ceil(cfg.batch_size);
	for step in first_step..plan.steps {
		if run.stop.is_some_and(|stop| stop.load(Ordering::Relaxed)) {
			return Err(Error::Stopped { step });
		}
		let step_started = Instant::now();
		let micro_batches = plan.step(step, cfg.grad_accum);
		let step_tokens: f64 = micro_batches
			.iter()
			.flat_map(|mb| mb.iter())
			.map(|&i| run.blocks[i].mask.iter().sum::<f32>() as f64)
			.sum();
		let mut grads: Vec<Tensor> = vars
			.iter()
			.map(|(_, v)| v.as_tensor().zeros_like())
			.collect::<candle_core::Result<_>>()?;
		let mut loss_sum = 0.0;
		let mut input_tokens = 0;
		let lr = cfg.learning_rate_at(step, plan.steps);
		let epoch_of = |micro: usize| (step * cfg.grad_accum + micro) / micro_per_epoch;
		let scored = |micro: usize| scored_epochs.contains(&epoch_of(micro));
		// The moments every scored document part of this step is preconditioned with.
		let adam_now = match (0..micro_batches.len()).any(scored) {
			true => Some(adam.preconditioner(cfg)?),
			false => None,
		};
		for (micro, indices) in micro_batches.iter().enumerate() {
			let key = (step * cfg.grad_accum + micro) as u64;
			let scoring = scored(micro);
			if let (true, Some(attribution), Some(sketch), Some(influence)) =
				(scoring, &run.attribution, &sketch, influence.as_mut())
			{
				let epoch = epoch_of(micro);
				// Taken as each scored epoch begins (the parameters do not change within a step).
				if probes.as_ref().is_none_or(|p| p.epoch != epoch) {
					let started = Instant::now();
					let directions = attribution.probe_directions(run.model, sketch)?;
					probes = Some(ProbeDirections { epoch, directions });
					influence.checkpoints.push(step);
					attribution_seconds += started.elapsed().as_secs_f64();
				}
			}
			let blocks: Vec<&Block> = indices.iter().map(|&i| &run.blocks[i]).collect();
			input_tokens += blocks.len() * cfg.cutoff_len;
			let mode = ForwardMode {
				training: true,
				dropout_key: (cfg.seed, key),
				gradients: true,
				..ForwardMode::EVAL
			};
			let (sum, _) = masked_loss_sum(run.model, &blocks, mode)?;
			let loss = (sum / step_tokens)?;
			loss_sum += loss.to_scalar::<f32>()? as f64;
			let segments =
				run.attribution.as_ref().filter(|_| scoring).map(|a| a.segments(&blocks));
			let (store, parts) = match &segments {
				Some(s) => {
					let (store, parts) =
						segments::record(s.runs.clone(), s.documents.len(), || loss.backward());
					(store?, Some(parts))
				},
				None => (loss.backward()?, None),
			};
			for (g, grad) in grads.iter_mut().zip(run.model.lora_gradients(&store)?) {
				*g = (&*g + grad)?;
			}
			if let (Some(segments), Some(parts), Some(adam_now), Some(sketch), Some(influence)) =
				(&segments, &parts, &adam_now, &sketch, influence.as_mut())
			{
				let started = Instant::now();
				let probes = probes.as_ref().map_or(&[][..], |p| &p.directions[..]);
				// Each document's part is scored on its own, so they run in parallel.
				let updates = (0..segments.documents.len())
					.into_par_iter()
					.filter(|&segment| segments.tokens[segment] > 0.0)
					.map(|segment| {
						let own = vars
							.iter()
							.zip(&unrouted)
							.map(|((name, var), unrouted)| {
								match parts.get(var.as_tensor().id(), segment) {
									Some(part) => Ok(part),
									// No token of the step chose this expert.
									None if routed.contains(&var.as_tensor().id()) => Ok(&unrouted[..]),
									None => Err(Error::Attribution(format!(
										"{name} has no per-document gradient: training-time attribution needs the fused CPU kernels"
									))),
								}
							})
							.collect::<Result<Vec<_>>>()?;
						// The document's own mean-loss gradient, as LESS scores it.
						let scale = (step_tokens / segments.tokens[segment]) as f32;
						Ok((segment, sketched_update(&own, scale, adam_now, sketch)))
					})
					.collect::<Result<Vec<_>>>()?;
				for (segment, update) in updates {
					influence.add_update(segments.documents[segment], &update, lr, probes);
				}
				attribution_seconds += started.elapsed().as_secs_f64();
			}
		}
		let norm = grads
			.iter()
			.map(|g| g.sqr()?.sum_all()?.to_scalar::<f32>().map(f64::from))
			.sum::<candle_core::Result<f64>>()?
			.sqrt();
		if norm > cfg.max_grad_norm {
			let scale = cfg.max_grad_norm / (norm + 1e-6);
			grads = grads.iter().map(|g| g * scale).collect::<candle_core::Result<_>>()?;
		}
		adam.step(&grads, lr, cfg)?;
		let seconds = step_started.elapsed().as_secs_f64();
		tokens_total += input_tokens;
		final_loss = loss_sum;
		let eval_loss = match run.evaluation.due(step + 1, plan.steps) {
			true => Some(evaluate(run.model, &run.evaluation.blocks, cfg.batch_size)?),
			false => None,
		};
		final_eval = eval_loss.or(final_eval);
		let progress = Progress {
			step: step + 1,
			total_steps: plan.steps,
			epoch: (step * cfg.grad_accum) as f64 / micro_per_epoch as f64,
			loss: loss_sum,
			lr,
			grad_norm: norm,
			tokens_per_s: input_tokens as f64 / seconds.max(1e-9),
			elapsed_s: started.elapsed().as_secs_f64(),
			eval_loss,
		};
		writeln!(log, "{}", serde_json::to_string(&progress).expect("serialisable"))
			.map_err(Error::io(&log_path))?;
		if run.progress_bar {
			progress_bar(step + 1, plan.steps, &progress);
		}
		if cfg.save_every > 0 && (step + 1) % cfg.save_every == 0 && step + 1 < plan.steps {
			save_checkpoint(&run, &adam, step + 1, &identity, influence.as_ref(), probes.as_ref())?;
		}
	}
	if run.progress_bar {
		println!();
	}
	// A run resumed from its last step trained nothing here, yet still reports its eval loss.
	if final_eval.is_none() && !run.evaluation.blocks.is_empty() {
		final_eval = Some(evaluate(run.model, &run.evaluation.blocks, cfg.batch_size)?);
	}
	let adapter_sha256 = adapter::save(run.model, &run.peft, &run.output)?;
	Ok(Summary {
		adapter_sha256,
		steps: plan.steps,
		final_loss,
		eval_loss: final_eval,
		tokens: tokens_total,
		seconds: started.elapsed().as_secs_f64(),
		attribution: influence,
		attribution_seconds,
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	/// HF's `get_cosine_schedule_with_warmup(warmup=2, total=10)` at steps 0, 1, 2, 6, 10.
	#[test]
	fn schedule_matches_transformers() {
		let cfg = TrainConfig { learning_rate: 1.0, warmup_steps: 2, ..TrainConfig::default() };
		let at = |s| cfg.learning_rate_at(s, 10);
		assert_eq!(at(0), 0.0);
		assert_eq!(at(1), 0.5);
		assert_eq!(at(2), 1.0);
		assert!((at(6) - 0.5).abs() < 1e-12);
		assert!(at(10).abs() < 1e-12);
		let linear = TrainConfig { schedule: Schedule::Linear, ..cfg };
		assert!((linear.learning_rate_at(6, 10) - 0.5).abs() < 1e-12);
	}

	#[test]
	fn plan_covers_every_block_once_per_epoch() {
		let cfg = TrainConfig { epochs: 2, batch_size: 3, grad_accum: 2, ..TrainConfig::default() };
		let plan = Plan::new(10, &cfg);
		assert_eq!(plan.micro_batches.len(), 8);
		assert_eq!(plan.steps, 4);
		let mut first: Vec<usize> = plan.micro_batches[..4].concat();
		first.sort();
		assert_eq!(first, (0..10).collect::<Vec<_>>());
		assert_ne!(
			plan.micro_batches[..4],
			plan.micro_batches[4..],
			"epochs are shuffled differently"
		);
	}
}
