//! The worker's loop: find a job, claim it, keep the lease, fetch, train, publish, commit.

use std::{
	collections::BTreeMap,
	path::{Path, PathBuf},
	sync::{
		atomic::{AtomicBool, Ordering},
		Arc,
	},
	time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context as _, Result};
use pallet_models::{Attribution, SHARES_WHOLE};
use provenant_client::{
	runtime::{
		self,
		runtime_types::pallet_models::types::{Job, JobState, JobStatus, Outcome, Share},
	},
	subxt::{
		rpcs::RpcClient,
		utils::{AccountId32, Static},
	},
	subxt_signer::sr25519::Keypair,
	Client,
};
use provenant_trainer::{
	adapter::{self, PeftConfig},
	attribution::{
		influence::{self, AttributionPlan, Projection},
		spans::trained_runs,
		SpanIndex,
	},
	data, job as trainer_job,
	model::{BuildOptions, Model},
	train::{self, Evaluation, Run},
};

use crate::dataset::{self, Contribution};

/// A job as the chain's client types hold it.
type ChainJob = Job<AccountId32, u128, u32>;

/// How the worker runs.
pub struct Options {
	/// The node's WebSocket endpoint.
	pub url: String,
	/// The worker's key: it claims, publishes and commits, and is paid.
	pub signer: Keypair,
	/// Local base models (HF directories or GGUF files) the worker will train.
	pub models: Vec<PathBuf>,
	/// Where fetched data, checkpoints and adapters are kept, one directory per job.
	pub work_dir: PathBuf,
	/// Stop after committing one job.
	pub once: bool,
	/// Work on this job only.
	pub job: Option<u64>,
	/// How often to look for jobs and check the lease.
	pub poll: Duration,
	/// No progress bar (progress.jsonl is still written).
	pub quiet: bool,
}

/// A local model that matches a registered one.
struct Held {
	model: u32,
	path: PathBuf,
}

/// How long each phase of a job took.
#[derive(Debug, Default)]
pub struct Timings {
	/// Claiming (or finding our own claim).
	pub claim: Duration,
	/// Fetching and checking the training set.
	pub fetch: Duration,
	/// Preparing data and training.
	pub train: Duration,
	/// Publishing the adapter and committing.
	pub commit: Duration,
}

/// One node, through subxt and through raw JSON-RPC (nonces, content), over one connection
/// each for the whole run.
#[derive(Clone)]
struct Chain {
	client: Client,
	rpc: RpcClient,
}

impl Chain {
	async fn connect(url: &str) -> Result<Self> {
		let reach = || format!("cannot reach a Provenant node at {url}");
		Ok(Self {
			client: provenant_client::connect(url).await.with_context(reach)?,
			rpc: provenant_client::rpc_client(url).await.with_context(reach)?,
		})
	}

	/// Signs with the pool's next nonce (retrying a clash) and waits for finality.
	async fn submit<Call: provenant_client::subxt::transactions::Payload>(
		&self,
		call: &Call,
		signer: &Keypair,
	) -> Result<()> {
		provenant_client::submit_and_finalize_from_pool(&self.client, &self.rpc, call, signer)
			.await?;
		Ok(())
	}
}

/// Runs the worker until stopped (or, with `once`, until one job is committed).
pub async fn run(options: Options) -> Result<()> {
	let chain = Chain::connect(&options.url).await?;
	let client = &chain.client;
	provenant_trainer::cpu::park_idle_candle_workers();
	let me = options.signer.public_key().to_account_id();
	let at = client.at_current_block().await?;
	let bonded = at.storage().try_fetch(runtime::storage().models().workers(), (me,)).await?;
	if bonded.is_none() {
		bail!("{me} has no worker bond: `provenant worker bond <amount> --from …` first");
	}
	let held = match_models(client, &options.models).await?;
	for model in &held {
		println!("serving model {} from {}", model.model, model.path.display());
	}
	loop {
		match next_job(client, &me, &held, options.job).await? {
			Some((id, job)) => {
				let model = held.iter().find(|m| m.model == job.model).expect("chosen among held");
				match work(&chain, &options, &me, id, job, &model.path).await {
					Ok(timings) => {
						println!(
							"job {id}: committed (claim {:.1}s, fetch {:.1}s, train {:.1}s, commit {:.1}s)",
							timings.claim.as_secs_f64(),
							timings.fetch.as_secs_f64(),
							timings.train.as_secs_f64(),
							timings.commit.as_secs_f64()
						);
						if options.once {
							return Ok(());
						}
					},
					Err(error) if options.once || options.job.is_some() => return Err(error),
					Err(error) => eprintln!("job {id}: {error:#}"),
				}
			},
			None => tokio::time::sleep(options.poll).await,
		}
	}
}

/// The registered, unretired models whose weight files are exactly the local ones.
async fn match_models(client: &Client, paths: &[PathBuf]) -> Result<Vec<Held>> {
	if paths.is_empty() {
		bail!("name at least one local base model with --model");
	}
	let mut held = Vec::new();
	for path in paths {
		let models = registered_models(client, path).await?;
		held.extend(models.into_iter().map(|model| Held { model, path: path.clone() }));
	}
	Ok(held)
}

/// The registered, unretired models whose weight files are exactly those of the local model at
/// `path`; an error that says how to register it when there are none.
pub async fn registered_models(client: &Client, path: &Path) -> Result<Vec<u32>> {
	let hashes = crate::fingerprint::fingerprint(path)?.weights;
	let at = client.at_current_block().await?;
	let mut matches = Vec::new();
	let mut entries = at.storage().iter(runtime::storage().models().base_models(), ()).await?;
	while let Some(entry) = entries.next().await {
		let entry = entry?;
		let (id,) = entry.key()?.decode()?;
		let model = entry.value().decode()?;
		if !model.retired && model.weights.0 == hashes {
			matches.push(id);
		}
	}
	if matches.is_empty() {
		bail!(
			"no registered model has the weights of {} (sha256 {}): register it with `provenant model register`",
			path.display(),
			hashes.iter().map(hex::encode).collect::<Vec<_>>().join(", ")
		);
	}
	Ok(matches)
}

/// Our own claimed job first (to resume it), else the oldest open job of a model we hold.
async fn next_job(
	client: &Client,
	me: &AccountId32,
	held: &[Held],
	only: Option<u64>,
) -> Result<Option<(u64, ChainJob)>> {
	let api = runtime::runtime_apis().models_api();
	let at = client.at_current_block().await?;
	let wanted = |id: u64| only.is_none_or(|only| only == id);
	let claimed =
		at.runtime_apis().call(api.jobs(Some(JobStatus::Claimed), None, 0, u32::MAX)).await?;
	if let Some(mine) = claimed.into_iter().find(|(id, job)| {
		wanted(*id) && matches!(&job.state, JobState::Claimed { worker, .. } if worker == me)
	}) {
		return Ok(Some(mine));
	}
	for model in held {
		let open = at
			.runtime_apis()
			.call(api.jobs(Some(JobStatus::Open), Some(model.model), 0, u32::MAX))
			.await?;
		if let Some(job) = open.into_iter().find(|(id, _)| wanted(*id)) {
			return Ok(Some(job));
		}
	}
	Ok(None)
}

/// Does job `id` from claim to commit.
async fn work(
	chain: &Chain,
	options: &Options,
	me: &AccountId32,
	id: u64,
	job: ChainJob,
	model_path: &Path,
) -> Result<Timings> {
	let mut timings = Timings::default();
	let started = Instant::now();
	if matches!(&job.state, JobState::Open) {
		chain
			.submit(&runtime::transactions().models().claim(id), &options.signer)
			.await
			.with_context(|| format!("claiming job {id}"))?;
		println!("job {id}: claimed");
	} else {
		println!("job {id}: resuming our claim");
	}
	timings.claim = started.elapsed();

	let stop = Arc::new(AtomicBool::new(false));
	let keeper = tokio::spawn(keep_lease(
		chain.clone(),
		options.signer.clone(),
		*me,
		id,
		options.poll,
		stop.clone(),
	));
	let result = train_and_commit(chain, options, id, &job, model_path, &mut timings, &stop).await;
	keeper.abort();
	if stop.load(Ordering::Relaxed) {
		// Nothing of this job can be committed now: its checkpoints go, its progress log stays
		// for the run's page.
		let adapter = options.work_dir.join(format!("job-{id}")).join("adapter");
		for entry in std::fs::read_dir(&adapter).into_iter().flatten().flatten() {
			if entry.file_name().to_string_lossy().starts_with("checkpoint-") {
				std::fs::remove_dir_all(entry.path()).ok();
			}
		}
		bail!(
			"stopped by its creator; the chain credited this worker the trainer's part of the fee"
		);
	}
	result.map(|()| timings)
}

/// Extends the lease whenever less than half of it is left, until aborted. Raises `stop` and
/// returns when the job's creator has stopped it.
async fn keep_lease(
	chain: Chain,
	signer: Keypair,
	me: AccountId32,
	id: u64,
	poll: Duration,
	stop: Arc<AtomicBool>,
) {
	loop {
		tokio::time::sleep(poll).await;
		let outcome: Result<()> = async {
			let at = chain.client.at_current_block().await?;
			let period = at
				.storage()
				.fetch(runtime::storage().models().lease_period(), ())
				.await?
				.decode()?;
			let now = at.block_number() as u32;
			let job = at
				.storage()
				.try_fetch(runtime::storage().models().jobs(), (id,))
				.await?
				.map(|value| value.decode())
				.transpose()?;
			match job.map(|job| job.state) {
				Some(JobState::Claimed { worker, until })
					if worker == me && until.saturating_sub(now) < period / 2 =>
				{
					chain.submit(&runtime::transactions().models().extend(id), &signer).await?;
					println!("job {id}: lease extended");
				},
				Some(JobState::Cancelled) => {
					println!("job {id}: cancelled on chain; ending its training");
					stop.store(true, Ordering::Relaxed);
				},
				_ => {},
			}
			Ok(())
		}
		.await;
		if let Err(error) = outcome {
			eprintln!("job {id}: extending the lease: {error:#}");
		}
		if stop.load(Ordering::Relaxed) {
			return;
		}
	}
}

/// Trains job `id` again from chain data alone, as its worker did, into `dir/adapter`; `dir`
/// should be empty, or a checkpoint there is resumed. Returns the adapter's directory.
pub async fn retrain(
	url: &str,
	id: u64,
	model_path: &Path,
	dir: &Path,
	quiet: bool,
) -> Result<(PathBuf, Trained)> {
	let chain = Chain::connect(url).await?;
	let job = chain
		.client
		.at_current_block()
		.await?
		.runtime_apis()
		.call(runtime::runtime_apis().models_api().job(id))
		.await?
		.ok_or_else(|| anyhow!("there is no job {id}"))?
		.job;
	let contributions = fetch_set(&chain, id, &job, &dir.join("data")).await?;
	let output = dir.join("adapter");
	let (path, target) = (model_path.to_path_buf(), output.clone());
	let trained = tokio::task::spawn_blocking(move || {
		train_job(&path, &job.params.0, &contributions, &target, quiet, None, None)
	})
	.await
	.map_err(|e| anyhow!("the training thread failed: {e}"))??;
	Ok((output, trained))
}

/// Fetches the set, trains, publishes and commits.
async fn train_and_commit(
	chain: &Chain,
	options: &Options,
	id: u64,
	job: &ChainJob,
	model_path: &Path,
	timings: &mut Timings,
	stop: &Arc<AtomicBool>,
) -> Result<()> {
	let dir = options.work_dir.join(format!("job-{id}"));
	let started = Instant::now();
	let contributions = fetch_set(chain, id, job, &dir.join("data")).await?;
	timings.fetch = started.elapsed();
	println!("job {id}: fetched and checked {} contributions", contributions.len());

	let started = Instant::now();
	let params = job.params.0.clone();
	let output = dir.join("adapter");
	let path = model_path.to_path_buf();
	let quiet = options.quiet;
	let index_path = dir.join(SPAN_INDEX_FILE);
	let span_index = Some((index_path.clone(), job.training.root));
	let stop = stop.clone();
	let trained = tokio::task::spawn_blocking(move || {
		train_job(&path, &params, &contributions, &output, quiet, span_index, Some(&stop))
	})
	.await
	.map_err(|e| anyhow!("the training thread failed: {e}"))??;
	timings.train = started.elapsed();
	if let Some((tokens, contributions)) = trained.indexed {
		println!(
			"job {id}: span index of {tokens} tokens from {contributions} contributions at {}",
			index_path.display()
		);
	}

	let started = Instant::now();
	let weights = std::fs::read(dir.join("adapter").join(adapter::WEIGHTS_FILE))?;
	let config = std::fs::read(dir.join("adapter").join(adapter::CONFIG_FILE))?;
	let sha = adapter::sha256(&weights);
	chain
		.submit(
			&runtime::transactions().models().publish_adapter(id, config, weights.clone()),
			&options.signer,
		)
		.await
		.context("publishing the adapter")?;
	println!("job {id}: published adapter {} ({} bytes)", hex::encode(sha), weights.len());
	let shares: Vec<Share> = trained
		.weights
		.iter()
		.map(|(contribution, weight)| Share { contribution: *contribution, weight: *weight })
		.collect();
	let outcome = Outcome {
		adapter: sha,
		adapter_size: weights.len() as u32,
		training_root: job.training.root,
		train_loss: (trained.summary.final_loss * 1e6).round() as u32,
		eval_loss: trained.eval_loss.map(|loss| (loss * 1e6).round() as u32),
		tokens: trained.tokens,
		steps: trained.summary.steps as u32,
		shares_root: pallet_models::merkle::root_of(
			trained.weights.iter().map(|(c, w)| pallet_models::merkle::share_leaf(*c, *w)),
		),
		attribution: Static(trained.attribution),
	};
	println!("job {id}: {}", describe_shares(&trained.weights, &trained.attribution));
	chain
		.submit(&runtime::transactions().models().commit(id, outcome, shares), &options.signer)
		.await
		.context("committing the job")?;
	timings.commit = started.elapsed();
	Ok(())
}

/// One line on how the shares were decided and the largest ones.
pub fn describe_shares(weights: &[(u64, u64)], attribution: &Attribution) -> String {
	let total: u64 = weights.iter().map(|(_, w)| w).sum();
	let mut largest: Vec<&(u64, u64)> = weights.iter().filter(|(_, w)| *w > 0).collect();
	largest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
	let top: Vec<String> = largest
		.iter()
		.take(5)
		.map(|(c, w)| format!("#{c} {:.1}%", 100.0 * *w as f64 / total.max(1) as f64))
		.collect();
	let method = match attribution {
		Attribution::Tokens => "shares by tokens".to_string(),
		Attribution::Influence { probes, checkpoints, .. } => format!(
			"shares by influence on {probes} held-out examples ({checkpoints} checkpoints), {} of {} contributions paid",
			largest.len(),
			weights.len()
		),
	};
	format!("{method}; largest: {}", top.join(", "))
}

/// Every member of the set, its bytes fetched (or read from the cache) and re-hashed.
async fn fetch_set(
	chain: &Chain,
	id: u64,
	job: &ChainJob,
	cache: &Path,
) -> Result<Vec<Contribution>> {
	std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
	let at = chain.client.at_current_block().await?;
	let mut members = Vec::new();
	while (members.len() as u64) < job.training.size {
		let page = at
			.runtime_apis()
			.call(runtime::runtime_apis().models_api().training_set(id, members.len() as u64, 500))
			.await?;
		if page.is_empty() {
			bail!(
				"the node lists {} of the job's {} contributions",
				members.len(),
				job.training.size
			);
		}
		members.extend(page);
	}
	let mut contributions = Vec::with_capacity(members.len());
	for member in members {
		let wanted = member.entry.content;
		let file = cache.join(format!("{}-{}", member.entry.contribution, hex::encode(wanted)));
		let bytes = match std::fs::read(&file) {
			Ok(bytes) if pallet_datanets::rules::content_hash(&bytes) == wanted => bytes,
			_ => {
				let bytes =
					provenant_client::fetch_content(&chain.rpc, &wanted).await.with_context(
						|| format!("fetching contribution {}", member.entry.contribution),
					)?;
				std::fs::write(&file, &bytes)?;
				bytes
			},
		};
		let record = at
			.storage()
			.try_fetch(runtime::storage().datanets().contributions(), (member.entry.contribution,))
			.await?
			.map(|value| value.decode())
			.transpose()?
			.ok_or_else(|| anyhow!("contribution {} has no record", member.entry.contribution))?;
		contributions.push(Contribution {
			id: member.entry.contribution,
			format: record.format.0,
			bytes,
		});
	}
	Ok(contributions)
}

/// The span index a worker writes beside each job's adapter, for `provenant-trainer attribute`.
pub const SPAN_INDEX_FILE: &str = "train.spans";

/// What training produced.
pub struct Trained {
	/// The run's summary.
	pub summary: train::Summary,
	/// Loss on the held-out contributions, if any were held out.
	pub eval_loss: Option<f64>,
	/// Input tokens of all steps: steps × blocks per step × cutoff.
	pub tokens: u64,
	/// Each member's weight in the contributors' part of the fee, in set order.
	pub weights: Vec<(u64, u64)>,
	/// How the weights were decided.
	pub attribution: Attribution,
	/// The tokens and contributions of the span index written, when one was asked for.
	pub indexed: Option<(usize, usize)>,
}

/// Probe gradients taken during a job's training, for its attribution.
const ATTRIBUTION_CHECKPOINTS: usize = 3;

/// Points on a job's eval-loss curve (Studio draws it from progress.jsonl); each costs one
/// forward pass over the held-out split.
const EVAL_POINTS: usize = 10;

/// `shares` (source, share of one) as weights in parts per billion for every member of
/// `members`, in their order, adding up to exactly [`SHARES_WHOLE`]: each share rounded down,
/// then the billionths left over given one each to the largest remainders (ties to the earlier
/// member). Members without a share get 0.
pub fn parts_per_billion(members: &[u64], shares: &[(u64, f64)]) -> Vec<(u64, u64)> {
	let whole = SHARES_WHOLE as f64;
	let exact: Vec<f64> = members
		.iter()
		.map(|member| {
			shares.iter().find(|(s, _)| s == member).map_or(0.0, |(_, share)| share * whole)
		})
		.collect();
	let mut weights: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
	let left = SHARES_WHOLE.saturating_sub(weights.iter().sum());
	let mut order: Vec<usize> = (0..members.len()).filter(|&i| exact[i] > 0.0).collect();
	order.sort_by(|&a, &b| {
		(exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b))
	});
	for &i in order.iter().cycle().take(left as usize) {
		weights[i] += 1;
	}
	members.iter().copied().zip(weights).collect()
}

/// Trains the job's adapter into `output`, resuming from its newest checkpoint, and attributes
/// it: with held-out contributions, each trained contribution's influence on them decides its
/// share (in-run TracIn, [`provenant_trainer::attribution::influence`]); without, or when no
/// contribution helped, its tokens do. With `span_index` (a path and the job's training-set
/// root) it also indexes the contributions it trains on (the held-out ones are not learned
/// from) for span attribution, with contribution ids as sources and the root as the index's
/// label.
pub fn train_job(
	model_path: &Path,
	params: &provenant_jobspec::HyperParams,
	contributions: &[Contribution],
	output: &Path,
	quiet: bool,
	span_index: Option<(PathBuf, [u8; 32])>,
	stop: Option<&AtomicBool>,
) -> Result<Trained> {
	let mut checkpoint = provenant_trainer::loader::open(model_path, None)?;
	let mut config = trainer_job::train_config(params);
	// Checkpoints let a killed worker resume its own job.
	config.save_every = 5;
	let settings = trainer_job::lora_settings(params);
	let quant = trainer_job::quant(params.method);
	trainer_job::check(&config, &settings, quant, &checkpoint.config)?;
	let (tokenizer, model_config) = (&checkpoint.tokenizer, &checkpoint.config);

	let ids: Vec<u64> = contributions.iter().map(|c| c.id).collect();
	let held_out = dataset::held_out(&ids, params.seed, params.eval_fraction);
	let mut documents = Vec::new();
	let mut train_examples = 0;
	let mut eval_examples = Vec::new();
	let mut token_weights = Vec::with_capacity(contributions.len());
	let mut by_format: BTreeMap<&str, usize> = BTreeMap::new();
	let mut span_documents = Vec::new();
	for contribution in contributions {
		let examples = dataset::examples(contribution)?;
		*by_format.entry(contribution.format.name()).or_default() += 1;
		let stream = data::tokenize(&examples, tokenizer, model_config)?;
		// Held-out contributions are in the set too: by tokens, they weigh like the rest.
		token_weights.push((contribution.id, dataset::tokens(&stream)));
		if held_out.contains(&contribution.id) {
			eval_examples.extend(examples);
		} else {
			train_examples += examples.len();
			if span_index.is_some() {
				let runs = trained_runs(&stream);
				span_documents.extend(runs.into_iter().map(|run| (contribution.id, run)));
			}
			documents.push((contribution.id, stream));
		}
	}
	let indexed = match span_index {
		Some((path, training_root)) => {
			let tokenizer = std::fs::read(&checkpoint.tokenizer_file)
				.with_context(|| format!("reading {}", checkpoint.tokenizer_file.display()))?;
			let index = SpanIndex::build(
				span_documents,
				checkpoint.config.vocab_size as u32,
				adapter::sha256(&tokenizer),
				training_root,
			)?;
			index.save(&path)?;
			Some((index.len(), contributions.len() - held_out.len()))
		},
		None => None,
	};
	// To standard error: `verify --retrain --json` keeps standard output for its JSON.
	eprintln!(
		"{} contributions ({}), {} held out; {train_examples} training examples",
		contributions.len(),
		by_format.iter().map(|(f, n)| format!("{n} {f}")).collect::<Vec<_>>().join(", "),
		held_out.len(),
	);
	let pad = checkpoint.config.eos_token_id.unwrap_or(0);
	// Each held-out example is a probe: what the contributions trained on taught about it.
	let probes: Vec<_> =
		influence::example_blocks(&eval_examples, tokenizer, model_config, config.cutoff_len)?
			.into_iter()
			.filter(|blocks| !blocks.is_empty())
			.collect();
	let probe_count = probes.len();
	let eval_blocks = if eval_examples.is_empty() {
		Vec::new()
	} else {
		data::pack(
			&data::tokenize(&eval_examples, tokenizer, model_config)?,
			config.cutoff_len,
			pad,
		)
	};
	let (plan, stream) =
		AttributionPlan::new(documents, probes, ATTRIBUTION_CHECKPOINTS, Projection::default());
	let blocks = data::pack(&stream, config.cutoff_len, pad);
	let sources = plan.sources.clone();
	let plan = (probe_count > 0).then_some(plan);
	let device = candle_core::Device::Cpu;
	let options = BuildOptions {
		lora: Some(settings.clone()),
		quant,
		seed: config.seed,
		..BuildOptions::default()
	};
	let model = Model::load(&checkpoint.config, checkpoint.weights.as_ref(), &device, &options)?;
	checkpoint.release_weights();
	let peft = PeftConfig::new(&settings, checkpoint.config.family, &checkpoint.name);
	let resume = train::latest_checkpoint(output);
	let summary = train::train(Run {
		model: &model,
		peft,
		config: config.clone(),
		blocks,
		output: output.to_path_buf(),
		resume,
		progress_bar: !quiet,
		attribution: plan,
		evaluation: Evaluation { blocks: eval_blocks, points: EVAL_POINTS },
		stop,
	})?;
	let eval_loss = summary.eval_loss;
	let tokens = (summary.steps * config.grad_accum * config.batch_size * config.cutoff_len) as u64;
	let shares = summary
		.attribution
		.as_ref()
		.map(|influence| influence::shares(&influence.by_source(&sources)))
		.unwrap_or_default();
	let (weights, attribution) = match &summary.attribution {
		Some(influence) if !shares.is_empty() => (
			parts_per_billion(&ids, &shares),
			Attribution::Influence {
				projection_dim: influence.projection.dim as u32,
				projection_seed: influence.projection.seed,
				checkpoints: influence.checkpoints.len() as u32,
				probes: probe_count as u32,
			},
		),
		Some(_) => {
			eprintln!("no contribution lowered the held-out loss: shares follow tokens");
			(token_weights, Attribution::Tokens)
		},
		None => (token_weights, Attribution::Tokens),
	};
	Ok(Trained { summary, eval_loss, tokens, weights, attribution, indexed })
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn shares_become_parts_per_billion_that_add_up_to_exactly_one() {
		let members = [1, 2, 3, 4];
		let weights = parts_per_billion(&members, &[(1, 0.5), (3, 1.0 / 3.0), (4, 1.0 / 6.0)]);
		assert_eq!(weights.iter().map(|(_, w)| w).sum::<u64>(), SHARES_WHOLE);
		// In set order; the member without a share gets nothing; the billionth left over goes
		// to the largest remainder: a sixth's .67, not a third's .33.
		assert_eq!(weights, [(1, 500_000_000), (2, 0), (3, 333_333_333), (4, 166_666_667)]);
		// Shares that do not add up to one exactly, as floating sums rarely do.
		let mut rng = provenant_trainer::rng::Rng::new(7);
		for _ in 0..100 {
			let raw: Vec<f64> = (0..50).map(|_| f64::from(rng.next_f32())).collect();
			let total: f64 = raw.iter().sum();
			let shares: Vec<(u64, f64)> =
				raw.iter().enumerate().map(|(i, x)| (i as u64, x / total)).collect();
			let members: Vec<u64> = (0..50).collect();
			let weights = parts_per_billion(&members, &shares);
			assert_eq!(weights.iter().map(|(_, w)| w).sum::<u64>(), SHARES_WHOLE);
			for ((_, w), (_, share)) in weights.iter().zip(&shares) {
				assert!((*w as f64 - share * 1e9).abs() <= 1.0, "{w} for {share}");
			}
		}
	}
}
