//! `provenant worker bond|unbond|status`: a trainer worker's bond and the jobs it holds.

use anyhow::{anyhow, Context as _, Result};
use provenant_client::runtime::{self, runtime_types::pallet_models::types::JobStatus};
use serde_json::json;

use crate::{
	chain::submit,
	context::{format_prv, parse_prv, Context},
};

/// Trainer workers.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Hold a bond, which lets the account claim jobs.
	Bond(BondArgs),
	/// Release part or all of the bond; all of it only when no lease is held.
	Unbond(BondArgs),
	/// Claim, train, publish and commit jobs for the local base models, until stopped.
	Run(RunArgs),
	/// A worker's bond and the jobs it holds a lease on.
	Status {
		/// The worker: an address, a key name or a dev URI.
		who: String,
	},
}

/// Options for `worker bond` and `worker unbond`.
#[derive(Debug, clap::Args)]
pub(crate) struct BondArgs {
	/// PRV to add to the bond, or to release from it.
	amount: String,
	/// The worker: a key name or a dev URI such as `//Bob`.
	#[arg(long)]
	from: String,
}

/// Options for `worker run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
	/// A local base model (HF directory or GGUF file) to train; repeat for several. Only jobs
	/// of registered models with exactly these files are claimed.
	#[arg(long = "model", required = true)]
	models: Vec<std::path::PathBuf>,
	/// Where fetched data, checkpoints and adapters are kept [default: ~/.provenant/worker].
	#[arg(long)]
	work_dir: Option<std::path::PathBuf>,
	/// Stop after committing one job.
	#[arg(long)]
	once: bool,
	/// Work on this job only.
	#[arg(long)]
	job: Option<u64>,
	/// Seconds between looks for jobs and lease checks.
	#[arg(long, default_value_t = 4)]
	poll_secs: u64,
	/// No progress bar (progress.jsonl is still written in the job's adapter directory).
	#[arg(long)]
	quiet: bool,
	/// The worker: a key name or a dev URI such as `//Bob`.
	#[arg(long)]
	from: String,
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		match self {
			Command::Bond(args) => args.bond(context).await,
			Command::Unbond(args) => args.unbond(context).await,
			Command::Run(args) => args.execute(context).await,
			Command::Status { who } => status(context, &who).await,
		}
	}
}

impl BondArgs {
	async fn bond(self, context: &Context) -> Result<()> {
		let amount = parse_prv(&self.amount)?;
		let call = runtime::transactions().models().bond(amount);
		submit(context, &context.connect().await?, &self.from, &call).await.context("bonding")?;
		context.emit(
			format!("bonded {} more as a trainer worker", format_prv(amount)),
			json!({ "bonded": amount.to_string() }),
		);
		Ok(())
	}

	async fn unbond(self, context: &Context) -> Result<()> {
		let amount = parse_prv(&self.amount)?;
		let call = runtime::transactions().models().unbond(amount);
		submit(context, &context.connect().await?, &self.from, &call).await.context("unbonding")?;
		context.emit(
			format!("released {} of the worker bond", format_prv(amount)),
			json!({ "released": amount.to_string() }),
		);
		Ok(())
	}
}

impl RunArgs {
	async fn execute(self, context: &Context) -> Result<()> {
		let work_dir = self.work_dir.unwrap_or_else(|| {
			let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
			home.join(".provenant").join("worker")
		});
		provenant_worker::run(provenant_worker::Options {
			url: context.url.clone(),
			signer: context.signer(&self.from)?,
			models: self.models,
			work_dir,
			once: self.once,
			job: self.job,
			poll: std::time::Duration::from_secs(self.poll_secs.max(1)),
			quiet: self.quiet,
		})
		.await
	}
}

async fn status(context: &Context, who: &str) -> Result<()> {
	let client = context.connect().await?;
	let account = context.account(who)?;
	let at = client.at_current_block().await?;
	let info = at
		.storage()
		.try_fetch(runtime::storage().models().workers(), (account,))
		.await?
		.map(|value| value.decode())
		.transpose()?
		.ok_or_else(|| {
			anyhow!("{account} is not a trainer worker: `provenant worker bond` makes it one")
		})?;
	let claimed = at
		.runtime_apis()
		.call(runtime::runtime_apis().models_api().jobs(
			Some(JobStatus::Claimed),
			None,
			0,
			u32::MAX,
		))
		.await?;
	let mine: Vec<_> = claimed
		.iter()
		.filter_map(|(id, job)| match &job.state {
			runtime::runtime_types::pallet_models::types::JobState::Claimed { worker, until }
				if *worker == account =>
			{
				Some((*id, *until))
			},
			_ => None,
		})
		.collect();
	let mut human =
		format!("worker {account}\n  bond:   {}\n  leases: {}", format_prv(info.bond), info.claims);
	for (job, until) in &mine {
		human.push_str(&format!("\n    job {job} until block {until}"));
	}
	context.emit(
		human,
		json!({
			"account": account.to_string(),
			"bond": info.bond.to_string(),
			"leases": mine.iter().map(|(job, until)| json!({"job": job, "until": until})).collect::<Vec<_>>(),
		}),
	);
	Ok(())
}
