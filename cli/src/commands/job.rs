//! `provenant job create|list|show|cancel`: fine-tuning jobs, their escrow and their state.

use anyhow::{anyhow, bail, Context as _, Result};
use provenant_client::{
	runtime::{
		self,
		runtime_types::pallet_models::types::{Job, JobState, JobStatus},
	},
	subxt::utils::{AccountId32, Static},
	Client,
};
use provenant_jobspec::{
	check, to_units, BaseLimits, HyperParams, Method, ModuleSet, Schedule, MICRO, NANO,
};
use serde_json::json;

use crate::{
	chain::{self, submit},
	context::{format_prv, parse_prv, Context},
};

/// A job with the chain's account, balance and block number types.
pub(crate) type ChainJob = Job<AccountId32, u128, u32>;

/// Fine-tuning jobs.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Order a fine-tune of a registered model on the accepted files of text datanets; the
	/// fee is held in escrow until a worker commits the result.
	Create(Box<CreateArgs>),
	/// List jobs, optionally by state or model.
	List(ListArgs),
	/// Show a job: its settings, training set, lease and result.
	Show {
		/// The job's number.
		job: u64,
	},
	/// Fetch a committed job's adapter from the chain into a PEFT directory, hash verified.
	Adapter(AdapterArgs),
	/// Take back a job and its fee (creator only). A claimed job is stopped: its worker is
	/// paid the trainer's part of the fee for the compute spent, and the rest comes back.
	Cancel(CancelArgs),
}

/// Options for `job adapter`.
#[derive(Debug, clap::Args)]
pub(crate) struct AdapterArgs {
	/// The job's number.
	job: u64,
	/// The directory to write `adapter_model.safetensors` and `adapter_config.json` into.
	#[arg(short, long)]
	output: std::path::PathBuf,
}

/// Options for `job cancel`.
#[derive(Debug, clap::Args)]
pub(crate) struct CancelArgs {
	/// The job's number.
	job: u64,
	/// The creator: a key name or a dev URI.
	#[arg(long)]
	from: String,
}

/// LoRA, or QLoRA with a quantised base.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum MethodArg {
	/// Full-precision frozen base.
	Lora,
	/// Base quantised to `--bits` (4: NF4, 8: int8).
	Qlora,
}

/// Learning-rate decay after warm-up.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum ScheduleArg {
	/// Half a cosine to zero.
	Cosine,
	/// A straight line to zero.
	Linear,
	/// The peak throughout.
	Constant,
}

/// Options for `job create`. The defaults are the trainer's.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
	/// The registered base model's number.
	#[arg(long)]
	model: u32,
	/// A text datanet to train on; repeat for several (up to 8).
	#[arg(long = "datanet", required = true)]
	datanets: Vec<u32>,
	/// The fee, in PRV, held in escrow and paid out on commit.
	#[arg(long)]
	fee: String,
	/// LoRA, or QLoRA with a quantised base.
	#[arg(long, value_enum, default_value_t = MethodArg::Lora)]
	method: MethodArg,
	/// QLoRA's base precision: 4 (NF4) or 8 (int8).
	#[arg(long, default_value_t = 4)]
	bits: u8,
	/// Peak learning rate.
	#[arg(long, default_value_t = 2e-4)]
	lr: f64,
	/// Passes over the training set.
	#[arg(long, default_value_t = 3)]
	epochs: u16,
	/// Blocks per micro-batch.
	#[arg(long, default_value_t = 4)]
	batch_size: u16,
	/// Micro-batches per optimiser step.
	#[arg(long, default_value_t = 1)]
	grad_accum: u16,
	/// Tokens per training block.
	#[arg(long, default_value_t = 256)]
	cutoff_len: u32,
	/// Steps of linear learning-rate warm-up.
	#[arg(long, default_value_t = 0)]
	warmup_steps: u32,
	/// Learning-rate decay after warm-up.
	#[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
	schedule: ScheduleArg,
	/// AdamW weight decay.
	#[arg(long, default_value_t = 0.0)]
	weight_decay: f64,
	/// Clip the gradient norm to this.
	#[arg(long, default_value_t = 1.0)]
	max_grad_norm: f64,
	/// Stop after this many optimiser steps.
	#[arg(long)]
	max_steps: Option<u32>,
	/// Adapter rank r.
	#[arg(long, default_value_t = 8)]
	rank: u16,
	/// LoRA alpha (the update is scaled by alpha/r).
	#[arg(long, default_value_t = 16)]
	alpha: u16,
	/// Dropout on the adapter's input.
	#[arg(long, default_value_t = 0.05)]
	dropout: f64,
	/// Modules to adapt, comma-separated [default: the family's attention projections].
	#[arg(long, value_delimiter = ',')]
	target: Vec<String>,
	/// Scale by alpha/sqrt(r) (rsLoRA).
	#[arg(long)]
	rslora: bool,
	/// Seed for initialisation, order, dropout and the eval split.
	#[arg(long, default_value_t = 42)]
	seed: u64,
	/// Share of the training set held out for the eval loss.
	#[arg(long, default_value_t = 0.1)]
	eval_fraction: f64,
	/// The creator, who pays the fee: a key name or a dev URI such as `//Alice`.
	#[arg(long)]
	from: String,
}

/// Options for `job list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
	/// Only jobs in this state: open, claimed, committed or cancelled.
	#[arg(long)]
	state: Option<String>,
	/// Only jobs of this model.
	#[arg(long)]
	model: Option<u32>,
	/// The first job to list.
	#[arg(long, default_value_t = 0)]
	from_job: u64,
	/// The most jobs to list.
	#[arg(long, default_value_t = 100)]
	limit: u32,
}

fn units(flag: &str, value: f64, unit: u32) -> Result<u32> {
	to_units(value, unit)
		.ok_or_else(|| anyhow!("invalid hyper-parameter {flag}: must be a number ≥ 0, got {value}"))
}

impl CreateArgs {
	/// The job's hyper-parameters for a model of `family`, in the chain's units.
	fn params(&self, family: provenant_jobspec::Family) -> Result<HyperParams> {
		let targets = if self.target.is_empty() {
			family.default_targets()
		} else {
			ModuleSet::parse(family, self.target.iter().map(String::as_str)).map_err(|name| {
				anyhow!(
					"unknown target module {name:?}: {family} has {}",
					family.modules().iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
				)
			})?
		};
		Ok(HyperParams {
			method: match self.method {
				MethodArg::Lora => Method::Lora,
				MethodArg::Qlora => Method::Qlora { bits: self.bits },
			},
			learning_rate: units("learning_rate", self.lr, NANO)?,
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
			weight_decay: units("weight_decay", self.weight_decay, NANO)?,
			max_grad_norm: units("max_grad_norm", self.max_grad_norm, NANO)?,
			max_steps: self.max_steps,
			rank: self.rank,
			alpha: self.alpha,
			dropout: units("dropout", self.dropout, MICRO)?,
			rslora: self.rslora,
			targets,
			seed: self.seed,
			eval_fraction: units("eval_fraction", self.eval_fraction, MICRO)?,
		})
	}
}

/// The state's name.
pub(crate) fn state_name(state: &JobState<AccountId32, u32>) -> &'static str {
	match state {
		JobState::Open => "open",
		JobState::Claimed { .. } => "claimed",
		JobState::Committed { .. } => "committed",
		JobState::Cancelled => "cancelled",
	}
}

fn parse_state(text: &str) -> Result<JobStatus> {
	Ok(match text {
		"open" => JobStatus::Open,
		"claimed" => JobStatus::Claimed,
		"committed" => JobStatus::Committed,
		"cancelled" => JobStatus::Cancelled,
		other => bail!("unknown state '{other}': use open, claimed, committed or cancelled"),
	})
}

/// A one-line description of a job's hyper-parameters.
pub(crate) fn describe_params(params: &HyperParams) -> String {
	let targets: Vec<_> = params.targets.iter().map(|m| m.name()).collect();
	format!(
		"{}, r={} α={}{} on {}, lr {} ({:?}), {} epochs × {} blocks of {} tokens{}, seed {}, {}% held out",
		params.method,
		params.rank,
		params.alpha,
		if params.rslora { " rsLoRA" } else { "" },
		targets.join(","),
		f64::from(params.learning_rate) / f64::from(NANO),
		params.schedule,
		params.epochs,
		u32::from(params.batch_size) * u32::from(params.grad_accum),
		params.cutoff_len,
		params.max_steps.map(|s| format!(" (at most {s} steps)")).unwrap_or_default(),
		params.seed,
		f64::from(params.eval_fraction) / f64::from(MICRO) * 100.0,
	)
}

fn job_json(id: u64, job: &ChainJob) -> serde_json::Value {
	let (worker, until) = match &job.state {
		JobState::Claimed { worker, until } => (Some(worker.to_string()), Some(*until)),
		JobState::Committed { worker } => (Some(worker.to_string()), None),
		_ => (None, None),
	};
	json!({
		"id": id,
		"creator": job.creator.to_string(),
		"model": job.model,
		"state": state_name(&job.state),
		"worker": worker,
		"leaseUntil": until,
		"fee": job.fee.to_string(),
		"created": job.created,
		"params": describe_params(&job.params.0),
		"trainingRoot": hex::encode(job.training.root),
		"trainingSize": job.training.size,
		"datanets": job.training.parts.0.iter().map(|p| json!({
			"datanet": p.datanet, "count": p.count, "root": hex::encode(p.root)
		})).collect::<Vec<_>>(),
	})
}

fn job_line(id: u64, job: &ChainJob) -> String {
	let datanets: Vec<String> =
		job.training.parts.0.iter().map(|part| part.datanet.to_string()).collect();
	format!(
		"{id:>5}  model {:<3} datanets {:<8} {:>4} files  {:<9} fee {}",
		job.model,
		datanets.join(","),
		job.training.size,
		state_name(&job.state),
		format_prv(job.fee)
	)
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let client = context.connect().await?;
		match self {
			Command::Create(args) => args.execute(context, &client).await,
			Command::List(args) => args.execute(context, &client).await,
			Command::Show { job } => show(context, &client, job).await,
			Command::Adapter(args) => args.execute(context, &client).await,
			Command::Cancel(args) => args.execute(context, &client).await,
		}
	}
}

impl CreateArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let base = chain::model(client, self.model).await?;
		let family = base.family.0;
		let params = self.params(family)?;
		// The chain's own rule, run here first so a refused job costs nothing.
		check(&params, &BaseLimits { family, max_positions: base.max_positions })?;
		let fee = parse_prv(&self.fee)?;
		let call = runtime::transactions().models().create_job(
			self.model,
			self.datanets.clone(),
			Static(params),
			fee,
		);
		let events =
			submit(context, client, &self.from, &call).await.context("creating the job")?;
		let created = events
			.find_first::<runtime::models::events::JobCreated>()
			.ok_or_else(|| anyhow!("the chain reported no JobCreated event"))??;
		let job = chain::job(client, created.job).await?.job;
		context.emit(
			format!(
				"created job {}: {} held in escrow; training set of {} files, root {}\n  {}",
				created.job,
				format_prv(created.fee),
				created.size,
				hex::encode(created.training_root),
				describe_params(&job.params.0),
			),
			job_json(created.job, &job),
		);
		Ok(())
	}
}

impl ListArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let status = self.state.as_deref().map(parse_state).transpose()?;
		let jobs = client
			.at_current_block()
			.await?
			.runtime_apis()
			.call(runtime::runtime_apis().models_api().jobs(
				status,
				self.model,
				self.from_job,
				self.limit,
			))
			.await?;
		let human = if jobs.is_empty() {
			"no jobs: `provenant job create` orders one".to_string()
		} else {
			jobs.iter().map(|(id, job)| job_line(*id, job)).collect::<Vec<_>>().join("\n")
		};
		let json: Vec<_> = jobs.iter().map(|(id, job)| job_json(*id, job)).collect();
		context.emit(human, json!(json));
		Ok(())
	}
}

async fn show(context: &Context, client: &Client, job: u64) -> Result<()> {
	let details = chain::job(client, job).await?;
	let mut human = format!(
		"job {job}: {}\n  model:     {}\n  creator:   {}\n  fee:       {}\n  settings:  {}\n  training:  {} files, root {}",
		state_name(&details.job.state),
		details.job.model,
		details.job.creator,
		format_prv(details.job.fee),
		describe_params(&details.job.params.0),
		details.job.training.size,
		hex::encode(details.job.training.root),
	);
	for part in &details.job.training.parts.0 {
		human.push_str(&format!(
			"\n    datanet {}: first {} accepted files, root {}",
			part.datanet,
			part.count,
			hex::encode(part.root)
		));
	}
	match &details.job.state {
		JobState::Claimed { worker, until } => {
			human.push_str(&format!("\n  worker:    {worker}, lease until block {until}"))
		},
		JobState::Committed { worker } => human.push_str(&format!("\n  worker:    {worker}")),
		_ => {},
	}
	if let Some(outcome) = &details.outcome {
		human.push_str(&format!(
			"\n  adapter:   sha256 {} ({} bytes)\n  loss:      train {:.4}{}\n  trained:   {} tokens in {} steps",
			hex::encode(outcome.adapter),
			outcome.adapter_size,
			f64::from(outcome.train_loss) / 1e6,
			outcome
				.eval_loss
				.map(|loss| format!(", eval {:.4}", f64::from(loss) / 1e6))
				.unwrap_or_default(),
			outcome.tokens,
			outcome.steps,
		));
		let weights: Vec<(u64, u64)> =
			details.shares.iter().map(|share| (share.contribution, share.weight)).collect();
		human.push_str(&format!(
			"\n  paid:      {}",
			provenant_worker::run::describe_shares(&weights, &outcome.attribution.0)
		));
	}
	let mut json = job_json(job, &details.job);
	if let Some(outcome) = &details.outcome {
		json["adapter"] = json!({
			"sha256": hex::encode(outcome.adapter),
			"size": outcome.adapter_size,
			"content": details.adapter.as_ref().map(|a| hex::encode(a.content)),
			"trainLoss": f64::from(outcome.train_loss) / 1e6,
			"evalLoss": outcome.eval_loss.map(|loss| f64::from(loss) / 1e6),
			"tokens": outcome.tokens,
			"steps": outcome.steps,
			"sharesRoot": hex::encode(outcome.shares_root),
			"attribution": outcome.attribution.0,
		});
	}
	context.emit(human, json);
	Ok(())
}

impl AdapterArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let (job, output) = (self.job, self.output);
		let details = chain::job(client, job).await?;
		let outcome = details.outcome.as_ref().ok_or_else(|| {
			anyhow!(
				"job {job} is {}: it has no committed adapter yet",
				state_name(&details.job.state)
			)
		})?;
		let published = details
			.adapter
			.as_ref()
			.ok_or_else(|| anyhow!("job {job} has no published adapter"))?;
		let bytes = chain::content(context, &published.content).await?;
		let sha = provenant_trainer::adapter::sha256(&bytes);
		if sha != outcome.adapter {
			bail!(
				"the chain's adapter bytes have sha256 {}, but job {job} committed {}",
				hex::encode(sha),
				hex::encode(outcome.adapter)
			);
		}
		std::fs::create_dir_all(&output)
			.with_context(|| format!("creating {}", output.display()))?;
		let weights = output.join(provenant_trainer::adapter::WEIGHTS_FILE);
		std::fs::write(&weights, &bytes)
			.with_context(|| format!("writing {}", weights.display()))?;
		let config = output.join(provenant_trainer::adapter::CONFIG_FILE);
		std::fs::write(&config, &published.config.0)
			.with_context(|| format!("writing {}", config.display()))?;
		context.emit(
			format!(
				"job {job}'s adapter ({} bytes, sha256 {} as committed) written to {}",
				bytes.len(),
				hex::encode(sha),
				output.display()
			),
			json!({ "job": job, "sha256": hex::encode(sha), "size": bytes.len(), "dir": output.display().to_string() }),
		);
		Ok(())
	}
}

impl CancelArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let job = self.job;
		let call = runtime::transactions().models().cancel_job(job);
		let events =
			submit(context, client, &self.from, &call).await.context("cancelling the job")?;
		match events.find_first::<runtime::models::events::JobStopped>().transpose()? {
			Some(stopped) => context.emit(
				format!(
					"job {job} stopped; worker {} is paid {} for its compute, and the rest of the \
					 fee is back in the creator's balance",
					stopped.worker,
					format_prv(stopped.paid),
				),
				json!({
					"job": job,
					"state": "cancelled",
					"stopped": { "worker": stopped.worker.to_string(), "paid": stopped.paid.to_string() },
				}),
			),
			None => context.emit(
				format!("job {job} cancelled; its fee is back in the creator's balance"),
				json!({ "job": job, "state": "cancelled" }),
			),
		}
		Ok(())
	}
}
