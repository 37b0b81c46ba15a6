//! `train`: fine-tune an adapter.

use crate::common::ModelArgs;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use provenant_trainer::{
	adapter::{LoraSettings, PeftConfig},
	attribution::influence::{self, AttributionPlan, Projection},
	data, job,
	model::{BuildOptions, ComputeDtype, Model},
	quant::QuantKind,
	train::{self, Evaluation, Run, Schedule, TrainConfig},
};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Method {
	/// Full-precision frozen base.
	Lora,
	/// Base quantised to NF4 (4 bits) or int8 (--bits 8).
	Qlora,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ComputeArg {
	F32,
	Bf16,
	F16,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScheduleArg {
	Cosine,
	Linear,
	Constant,
}

/// Train a LoRA or QLoRA adapter.
#[derive(Args, Debug)]
pub(crate) struct Command {
	#[command(flatten)]
	model: ModelArgs,
	/// Training data: JSONL (text, prompt/response or Alpaca fields), .txt or .md.
	#[arg(long)]
	data: PathBuf,
	/// Held-out data (same formats): its loss is logged as the run goes (`eval_loss` in
	/// progress.jsonl) and printed at the end.
	#[arg(long)]
	eval_data: Option<PathBuf>,
	/// Points on the eval-loss curve: --eval-data is evaluated every steps/N steps and after
	/// the last (0: only after the last).
	#[arg(long, default_value_t = 10, requires = "eval_data")]
	eval_points: usize,
	/// Probe examples (same formats): scores each training example's influence on them during
	/// training and writes attribution.json; each example of --data is one source, numbered
	/// from 0.
	#[arg(long)]
	probes: Option<PathBuf>,
	/// Attribution checkpoints: epochs scored, evenly spaced from the first, the probes'
	/// gradient taken as each begins (every epoch when there are fewer).
	#[arg(long, default_value_t = 3)]
	attribution_checkpoints: usize,
	/// Numbers each adapter gradient is projected to for attribution.
	#[arg(long, default_value_t = 8192)]
	projection_dim: usize,
	/// Seed of the attribution projection.
	#[arg(long, default_value_t = 0)]
	projection_seed: u64,
	/// With --probes, also score the examples by DataInf, from the finished model alone, into
	/// attribution.json's "datainf".
	#[arg(long, requires = "probes")]
	datainf: bool,
	/// Directory for the adapter, checkpoints and progress.jsonl.
	#[arg(long)]
	output: PathBuf,
	/// LoRA, or QLoRA with a quantised base.
	#[arg(long, value_enum, default_value_t = Method::Lora)]
	method: Method,
	/// QLoRA's base precision: 4 (NF4) or 8 (int8).
	#[arg(long, default_value_t = 4)]
	bits: u8,
	/// What the frozen base's products compute in: bf16 (or f16) holds the base (or QLoRA's
	/// dequantised base) in bf16 (f16) on the CPU's AVX-512 BF16 (FP16) instructions; adapters
	/// and the optimiser stay f32. Where the CPU lacks them, the base stays f32.
	#[arg(long, value_enum, default_value_t = ComputeArg::F32)]
	compute_dtype: ComputeArg,
	/// Adapter rank r.
	#[arg(long, default_value_t = 8)]
	rank: usize,
	/// LoRA alpha (the update is scaled by alpha/r).
	#[arg(long, default_value_t = 16.0)]
	alpha: f64,
	/// Dropout on the adapter's input.
	#[arg(long, default_value_t = 0.05)]
	dropout: f32,
	/// Modules to adapt, comma-separated (default: the family's attention projections).
	#[arg(long, value_delimiter = ',')]
	target: Vec<String>,
	/// Scale by alpha/sqrt(r) (rsLoRA).
	#[arg(long)]
	rslora: bool,
	/// Peak learning rate.
	#[arg(long, default_value_t = 2e-4)]
	lr: f64,
	/// Passes over the data.
	#[arg(long, default_value_t = 3)]
	epochs: usize,
	/// Blocks per micro-batch.
	#[arg(long, default_value_t = 4)]
	batch_size: usize,
	/// Micro-batches per optimiser step.
	#[arg(long, default_value_t = 1)]
	grad_accum: usize,
	/// Tokens per training block.
	#[arg(long, default_value_t = 256)]
	cutoff_len: usize,
	/// Steps of linear learning-rate warm-up.
	#[arg(long, default_value_t = 0)]
	warmup_steps: usize,
	/// Learning-rate decay after warm-up.
	#[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
	schedule: ScheduleArg,
	/// AdamW weight decay.
	#[arg(long, default_value_t = 0.0)]
	weight_decay: f64,
	/// Clip the gradient norm to this.
	#[arg(long, default_value_t = 1.0)]
	max_grad_norm: f64,
	/// Seed for initialisation, shuffling and dropout.
	#[arg(long, default_value_t = 42)]
	seed: u64,
	/// Write a checkpoint every N steps (0: never).
	#[arg(long, default_value_t = 0)]
	save_every: usize,
	/// Stop after N steps.
	#[arg(long)]
	max_steps: Option<usize>,
	/// Resume from the newest checkpoint in --output.
	#[arg(long)]
	resume: bool,
	/// No progress bar (progress.jsonl is still written).
	#[arg(long)]
	quiet: bool,
}

impl Command {
	pub(crate) fn execute(self) -> Result<()> {
		let mut checkpoint = self.model.open()?;
		let family = checkpoint.config.family;
		let settings = LoraSettings {
			rank: self.rank,
			alpha: self.alpha,
			dropout: self.dropout,
			targets: if self.target.is_empty() {
				LoraSettings::defaults(family).targets
			} else {
				self.target.clone()
			},
			use_rslora: self.rslora,
		};
		let quant = match self.method {
			Method::Lora => None,
			Method::Qlora => Some(job::qlora(self.bits)?),
		};
		let config = TrainConfig {
			learning_rate: self.lr,
			epochs: self.epochs,
			batch_size: self.batch_size,
			grad_accum: self.grad_accum,
			cutoff_len: self.cutoff_len,
			warmup_steps: self.warmup_steps,
			schedule: match self.schedule {
				ScheduleArg::Cosine => Schedule::Cosine,
				ScheduleArg::Linear => Schedule::Linear,
				ScheduleArg::Constant => Schedule::Constant,
			},
			weight_decay: self.weight_decay,
			max_grad_norm: self.max_grad_norm,
			seed: self.seed,
			save_every: self.save_every,
			max_steps: self.max_steps,
			..TrainConfig::default()
		};
		job::check(&config, &settings, quant, &checkpoint.config)?;
		let train_set = data::load_blocks(
			&self.data,
			&checkpoint.tokenizer,
			&checkpoint.config,
			config.cutoff_len,
		)?;
		let evaluation = Evaluation {
			blocks: match &self.eval_data {
				Some(path) => {
					data::load_blocks(
						path,
						&checkpoint.tokenizer,
						&checkpoint.config,
						config.cutoff_len,
					)?
					.blocks
				},
				None => Vec::new(),
			},
			points: self.eval_points,
		};
		let resume = if self.resume {
			match train::latest_checkpoint(&self.output) {
				Some(dir) => Some(dir),
				None => bail!("--resume: no checkpoint-N directory in {}", self.output.display()),
			}
		} else {
			None
		};
		let device = self.model.device()?;
		let (compute, instructions) = match self.compute_dtype {
			ComputeArg::F32 => (ComputeDtype::F32, ""),
			ComputeArg::Bf16 => (ComputeDtype::Bf16, "AVX-512 BF16"),
			ComputeArg::F16 => (ComputeDtype::F16, "AVX-512 FP16"),
		};
		let compute = if compute != ComputeDtype::F32 && compute.half().is_none() {
			eprintln!("note: this CPU has no {instructions}; the base computes in f32");
			ComputeDtype::F32
		} else {
			compute
		};
		let options =
			BuildOptions { lora: Some(settings.clone()), quant, seed: self.seed, compute };
		let model =
			Model::load(&checkpoint.config, checkpoint.weights.as_ref(), &device, &options)?;
		checkpoint.release_weights();
		let peft = PeftConfig::new(&settings, family, &checkpoint.name);
		let trainable: usize = model.lora_vars().iter().map(|(_, v)| v.elem_count()).sum();
		println!(
			"{} ({}), {} layers, {:.1}M base parameters ({} MiB frozen linear weights{}), {} trainable",
			checkpoint.name,
			family.name(),
			checkpoint.config.num_layers,
			checkpoint.config.parameter_count() as f64 / 1e6,
			model.frozen_linear_bytes() / (1 << 20),
			match (quant, compute) {
				(Some(QuantKind::Nf4), ComputeDtype::F32) => ", NF4",
				(Some(QuantKind::Int8), ComputeDtype::F32) => ", int8",
				(Some(QuantKind::Nf4), ComputeDtype::Bf16) => ", NF4, computed in bf16",
				(Some(QuantKind::Int8), ComputeDtype::Bf16) => ", int8, computed in bf16",
				(Some(QuantKind::Nf4), ComputeDtype::F16) => ", NF4, computed in f16",
				(Some(QuantKind::Int8), ComputeDtype::F16) => ", int8, computed in f16",
				(None, ComputeDtype::Bf16) => ", bf16",
				(None, ComputeDtype::F16) => ", f16",
				(None, ComputeDtype::F32) => "",
			},
			trainable
		);
		println!(
			"{} examples, {} tokens, {} blocks of {}",
			train_set.examples,
			train_set.tokens,
			train_set.blocks.len(),
			config.cutoff_len
		);
		if let Some(dir) = &resume {
			println!("resuming from {}", dir.display());
		}
		// Each example is a document and its own source; the stream they make together is the
		// one `train_set` was packed from, so an attributed run trains exactly the same.
		let mut blocks = train_set.blocks;
		let mut datainf_inputs = None;
		let attribution = match &self.probes {
			Some(probes) => {
				let (tokenizer, cfg) = (&checkpoint.tokenizer, &checkpoint.config);
				let examples = data::read_dataset(&self.data)?;
				let documents = examples
					.iter()
					.enumerate()
					.map(|(source, example)| {
						Ok((
							source as u64,
							data::tokenize(std::slice::from_ref(example), tokenizer, cfg)?,
						))
					})
					.collect::<Result<Vec<_>, provenant_trainer::Error>>()?;
				let probes = data::read_dataset(probes)?;
				let probes = influence::example_blocks(&probes, tokenizer, cfg, config.cutoff_len)?
					.into_iter()
					.filter(|blocks| !blocks.is_empty())
					.collect();
				let projection =
					Projection { dim: self.projection_dim, seed: self.projection_seed };
				let (plan, stream) = AttributionPlan::new(
					documents,
					probes,
					self.attribution_checkpoints,
					projection,
				);
				blocks = data::pack(&stream, config.cutoff_len, cfg.eos_token_id.unwrap_or(0));
				// DataInf scores each document packed on its own, after training.
				if self.datainf {
					let documents =
						influence::example_blocks(&examples, tokenizer, cfg, config.cutoff_len)?;
					datainf_inputs = Some((documents, plan.probes.clone(), plan.projection));
				}
				Some(plan)
			},
			None => None,
		};
		let sources: Vec<u64> =
			attribution.as_ref().map(|plan| plan.sources.clone()).unwrap_or_default();
		let summary = train::train(Run {
			model: &model,
			peft,
			config: config.clone(),
			blocks,
			output: self.output.clone(),
			resume,
			progress_bar: !self.quiet,
			attribution,
			evaluation,
			stop: None,
		})?;
		println!(
			"final loss {:.4} after {} steps ({:.1}s)",
			summary.final_loss, summary.steps, summary.seconds
		);
		if let Some(loss) = summary.eval_loss {
			println!("eval loss {loss:.4}, perplexity {:.2}", loss.exp());
		}
		if let Some(influence) = &summary.attribution {
			let by_source = influence.by_source(&sources);
			let shares = influence::shares(&by_source);
			let mut report = serde_json::json!({
				"method": "TracIn over each document's part of every micro-batch's LoRA gradient, preconditioned by Adam's second moment, CountSketch projection",
				"projection": influence.projection,
				"checkpoints": influence.checkpoints,
				"sources": influence_json(&by_source, "influence"),
				"shares": influence_json(&shares, "share"),
				"probes": per_probe(influence, &sources),
				"seconds": summary.attribution_seconds,
			});
			if let Some((documents, probes, projection)) = &datainf_inputs {
				let started = std::time::Instant::now();
				let datainf = influence::datainf(&model, documents, probes, *projection)?;
				let by_source = datainf.by_source(&sources);
				let shares = influence::shares(&by_source);
				report["datainf"] = serde_json::json!({
					"sources": influence_json(&by_source, "influence"),
					"shares": influence_json(&shares, "share"),
					"probes": per_probe(&datainf, &sources),
					"seconds": started.elapsed().as_secs_f64(),
				});
			}
			let path = self.output.join("attribution.json");
			std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
			println!(
				"attribution: probes taken at {} checkpoints; scoring took {:.1}s ({:.0}% of the run); written to {}",
				influence.checkpoints.len(),
				summary.attribution_seconds,
				100.0 * summary.attribution_seconds / summary.seconds.max(1e-9),
				path.display()
			);
			for (source, share) in shares.iter().take(5) {
				println!("  example {source}: {:.1}%", share * 100.0);
			}
		}
		println!("adapter written to {}", self.output.display());
		println!("sha256 {}  adapter_model.safetensors", summary.adapter_sha256);
		Ok(())
	}
}

/// `[{"source": …, <field>: …}, …]`.
fn influence_json(rows: &[(u64, f64)], field: &str) -> serde_json::Value {
	rows.iter()
		.map(|(source, value)| serde_json::json!({ "source": source, field: value }))
		.collect()
}

/// For each probe, the ten sources of most influence on it, most first.
fn per_probe(influence: &influence::Influence, sources: &[u64]) -> serde_json::Value {
	let probes = influence.by_probe.first().map_or(0, Vec::len);
	(0..probes)
		.map(|probe| {
			let mut ranked = influence.by_source_on(sources, probe);
			ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
			ranked.truncate(10);
			serde_json::json!({ "probe": probe, "top": influence_json(&ranked, "influence") })
		})
		.collect()
}
