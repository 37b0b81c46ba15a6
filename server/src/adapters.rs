//! Which model a request names, and the adapters behind those names: fetched from the chain's
//! content RPC or read from a local directory, checked against the sha256 committed on chain
//! before first use, and kept in a least-recently-used cache with a byte budget.
//!
//! A request's `model` is the base (its name, or `base`), a job (`job-7` or `7`), or an adapter
//! by its sha256. An adapter is served only as the result of a committed job on this server's
//! base model; bytes whose hash differs from the committed one are refused, never served.

use std::{
	path::{Path, PathBuf},
	sync::{atomic::Ordering, Arc, Mutex},
	time::Instant,
};

use anyhow::{anyhow, Context as _, Result};
use pallet_models::Attribution;
use provenant_client::{
	runtime::{self, runtime_types::pallet_models::types::JobState},
	subxt::rpcs::RpcClient,
	Client,
};
use provenant_trainer::{
	adapter::{self, PeftConfig},
	attribution::SpanIndex,
	linear::DetachedAdapter,
	model::Model,
};

use crate::metrics::Metrics;

/// An adapter ready to serve, with what its answers are attributed to.
pub struct Loaded {
	/// The name it is served under: `job-<id>`.
	pub name: String,
	/// Its job.
	pub job: u64,
	/// sha256 of its weights file, as committed.
	pub sha256: [u8; 32],
	/// Its matrices.
	pub adapter: DetachedAdapter,
	/// The committed contributor shares.
	pub shares: Committed,
	/// Its training set's span index, when one could be had.
	pub spans: Option<SpanIndex>,
	/// Seconds it took to fetch (or read), verify and load.
	pub load_seconds: f64,
	/// Where its bytes came from.
	pub source: String,
}

/// A job's committed shares, as the chain holds them.
#[derive(Clone, Debug)]
pub struct Committed {
	/// How they were decided.
	pub method: Attribution,
	/// `(contribution, weight)` in training-set order.
	pub weights: Vec<(u64, u64)>,
}

impl Committed {
	/// The largest shares as fractions of one, largest first.
	pub fn largest(&self, count: usize) -> Vec<(u64, f64)> {
		let total: u64 = self.weights.iter().map(|(_, w)| w).sum();
		let mut shares: Vec<(u64, f64)> = self
			.weights
			.iter()
			.filter(|(_, w)| *w > 0)
			.map(|(c, w)| (*c, *w as f64 / total.max(1) as f64))
			.collect();
		shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
		shares.truncate(count);
		shares
	}
}

/// What a request's `model` names.
pub enum Target {
	/// The base model alone.
	Base,
	/// A committed job's adapter.
	Adapter(Arc<Loaded>),
}

/// Why a name could not be served.
#[derive(Debug)]
pub enum NotServed {
	/// No such model (HTTP 404).
	Unknown(String),
	/// The adapter exists but may not be served (HTTP 400 or 403).
	Refused(String),
	/// Something failed on the way (HTTP 502).
	Failed(String),
}

impl std::fmt::Display for NotServed {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		match self {
			NotServed::Unknown(m) | NotServed::Refused(m) | NotServed::Failed(m) => f.write_str(m),
		}
	}
}

/// The chain this server checks adapters against.
#[derive(Clone)]
pub struct Chain {
	/// Typed access.
	pub client: Client,
	/// Raw JSON-RPC, for the content RPC.
	pub rpc: RpcClient,
	/// The registered model id of the base this server holds.
	pub model: u32,
}

/// The adapters' cache and their sources.
pub struct Store {
	base: Arc<Model>,
	/// The base's name, as `/v1/models` lists it.
	pub base_name: String,
	/// sha256 of the base's tokenizer file, which span indexes must match.
	tokenizer_sha: [u8; 32],
	chain: Option<Chain>,
	local: Option<PathBuf>,
	budget: usize,
	cache: Mutex<Vec<Arc<Loaded>>>,
	/// One load at a time, so two requests for a new adapter fetch it once.
	loading: tokio::sync::Mutex<()>,
	metrics: Arc<Metrics>,
}

impl Store {
	/// Where a worker on this machine trains `job` (`--adapters`), if this server was told.
	pub fn job_dir(&self, job: u64) -> Option<PathBuf> {
		self.local.as_ref().map(|dir| dir.join(format!("job-{job}")))
	}

	/// A store for adapters of `base`.
	#[allow(clippy::too_many_arguments)]
	pub fn new(
		base: Arc<Model>,
		base_name: String,
		tokenizer_sha: [u8; 32],
		chain: Option<Chain>,
		local: Option<PathBuf>,
		budget: usize,
		metrics: Arc<Metrics>,
	) -> Self {
		Self {
			base,
			base_name,
			tokenizer_sha,
			chain,
			local,
			budget,
			cache: Mutex::new(Vec::new()),
			loading: tokio::sync::Mutex::new(()),
			metrics,
		}
	}

	/// The base model every adapter is served over.
	pub fn base(&self) -> &Arc<Model> {
		&self.base
	}

	/// The chain, if the server has one.
	pub fn chain(&self) -> Option<&Chain> {
		self.chain.as_ref()
	}

	/// What `model` names, loading and verifying an adapter on first use.
	pub async fn resolve(&self, model: &str) -> Result<Target, NotServed> {
		let model = model.trim();
		if model == "base" || model == self.base_name {
			return Ok(Target::Base);
		}
		let chain = self.chain.as_ref().ok_or_else(|| {
			NotServed::Unknown(format!(
				"'{model}' is not this server's base model ({}); adapters are served only when \
				 the server can check them against the chain (start it with --chain)",
				self.base_name
			))
		})?;
		let job = self.job_named(chain, model).await?;
		if let Some(hit) = self.cached(job) {
			self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
			return Ok(Target::Adapter(hit));
		}
		let _one_at_a_time = self.loading.lock().await;
		if let Some(hit) = self.cached(job) {
			self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
			return Ok(Target::Adapter(hit));
		}
		self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
		let loaded = Arc::new(self.load(chain, job).await?);
		self.insert(loaded.clone())?;
		println!(
			"loaded {} ({:.1} MiB) from {}, its sha256 {} as committed, in {:.2} s",
			loaded.name,
			mib(loaded.adapter.bytes()),
			loaded.source,
			hex::encode(loaded.sha256),
			loaded.load_seconds
		);
		Ok(Target::Adapter(loaded))
	}

	/// The job `model` names: `job-7`, `7`, or a committed adapter's sha256.
	async fn job_named(&self, chain: &Chain, model: &str) -> Result<u64, NotServed> {
		let number = model.strip_prefix("job-").unwrap_or(model);
		if let Ok(job) = number.parse::<u64>() {
			return Ok(job);
		}
		let unknown = || {
			NotServed::Unknown(format!(
				"unknown model '{model}': name the base ({}), a job (job-7) or a committed \
				 adapter's sha256; GET /v1/models lists them",
				self.base_name
			))
		};
		let sha: [u8; 32] =
			hex::decode(model).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(unknown)?;
		let at = chain.client.at_current_block().await.map_err(failed)?;
		at.runtime_apis()
			.call(runtime::runtime_apis().models_api().job_by_adapter(sha))
			.await
			.map_err(failed)?
			.ok_or_else(|| {
				NotServed::Unknown(format!(
					"no committed job has an adapter with sha256 {model}: it cannot be served"
				))
			})
	}

	fn cached(&self, job: u64) -> Option<Arc<Loaded>> {
		let mut cache = self.cache.lock().expect("the cache lock is never poisoned");
		let position = cache.iter().position(|l| l.job == job)?;
		let hit = cache.remove(position);
		cache.push(hit.clone());
		Some(hit)
	}

	/// Adds `loaded` as the most recent entry, evicting the least recent past the budget.
	fn insert(&self, loaded: Arc<Loaded>) -> Result<(), NotServed> {
		let bytes = loaded.adapter.bytes();
		if bytes > self.budget {
			return Err(NotServed::Refused(format!(
				"{} needs {:.1} MiB, more than the adapter cache's {:.1} MiB (--cache-mib)",
				loaded.name,
				mib(bytes),
				mib(self.budget)
			)));
		}
		let mut cache = self.cache.lock().expect("the cache lock is never poisoned");
		cache.push(loaded);
		let mut total: usize = cache.iter().map(|l| l.adapter.bytes()).sum();
		while total > self.budget {
			let evicted = cache.remove(0);
			total -= evicted.adapter.bytes();
			self.metrics.cache_evictions.fetch_add(1, Ordering::Relaxed);
		}
		self.metrics.cache_bytes.store(total, Ordering::Relaxed);
		self.metrics.cached_adapters.store(cache.len(), Ordering::Relaxed);
		Ok(())
	}

	/// Fetches (or reads) job `job`'s adapter, checks it against the commit, and loads it.
	async fn load(&self, chain: &Chain, job: u64) -> Result<Loaded, NotServed> {
		let started = Instant::now();
		let at = chain.client.at_current_block().await.map_err(failed)?;
		let details = at
			.runtime_apis()
			.call(runtime::runtime_apis().models_api().job(job))
			.await
			.map_err(failed)?
			.ok_or_else(|| NotServed::Unknown(format!("there is no job {job}")))?;
		let Some(outcome) = &details.outcome else {
			let state = match &details.job.state {
				JobState::Open => "open",
				JobState::Claimed { .. } => "claimed",
				JobState::Committed { .. } => "committed",
				JobState::Cancelled => "cancelled",
			};
			return Err(NotServed::Refused(format!(
				"job {job} is {state}: it has no committed adapter to serve yet"
			)));
		};
		if details.job.model != chain.model {
			return Err(NotServed::Refused(format!(
				"job {job} fine-tunes model {}, but this server holds model {} ({})",
				details.job.model, chain.model, self.base_name
			)));
		}
		let published = details.adapter.as_ref().ok_or_else(|| {
			NotServed::Failed(format!("job {job} is committed but the chain holds no adapter"))
		})?;
		let committed = outcome.adapter;
		let local = self.local.as_ref().map(|dir| dir.join(format!("job-{job}")));
		let local_file = local
			.as_ref()
			.map(|d| d.join("adapter").join(adapter::WEIGHTS_FILE))
			.filter(|f| f.exists());
		let (bytes, source) = match &local_file {
			Some(file) => (
				std::fs::read(file)
					.map_err(|e| NotServed::Failed(format!("reading {}: {e}", file.display())))?,
				file.display().to_string(),
			),
			None => (
				provenant_client::fetch_content(&chain.rpc, &published.content)
					.await
					.map_err(|e| NotServed::Failed(format!("fetching job {job}'s adapter: {e}")))?,
				"the chain's content RPC".to_string(),
			),
		};
		// The config the worker published on chain, not a local one the hash does not cover.
		let detached =
			verified_adapter(&self.base, job, &source, &bytes, committed, &published.config.0)?;
		let spans = local
			.map(|dir| dir.join(provenant_worker::run::SPAN_INDEX_FILE))
			.filter(|f| f.exists())
			.and_then(|f| self.span_index(&f, details.job.training.root).ok());
		let load_seconds = started.elapsed().as_secs_f64();
		self.metrics.adapter_loads.fetch_add(1, Ordering::Relaxed);
		Ok(Loaded {
			name: format!("job-{job}"),
			job,
			sha256: committed,
			adapter: detached,
			shares: Committed {
				method: outcome.attribution.0,
				weights: details.shares.iter().map(|s| (s.contribution, s.weight)).collect(),
			},
			spans,
			load_seconds,
			source,
		})
	}

	/// The span index at `path`, if it indexes the job's training set with this tokenizer.
	fn span_index(&self, path: &Path, training_root: [u8; 32]) -> Result<SpanIndex> {
		let index = SpanIndex::load(path)?;
		if index.training_set != training_root || index.tokenizer != self.tokenizer_sha {
			return Err(anyhow!("{} indexes another training set", path.display()));
		}
		Ok(index)
	}

	/// The committed jobs this server can serve, newest last.
	pub async fn committed_jobs(&self) -> Result<Vec<u64>> {
		let Some(chain) = &self.chain else { return Ok(Vec::new()) };
		let at = chain.client.at_current_block().await?;
		let jobs = at
			.runtime_apis()
			.call(runtime::runtime_apis().models_api().jobs(
				Some(runtime::runtime_types::pallet_models::types::JobStatus::Committed),
				Some(chain.model),
				0,
				u32::MAX,
			))
			.await
			.context("listing committed jobs")?;
		Ok(jobs.into_iter().map(|(id, _)| id).collect())
	}
}

/// Job `job`'s adapter from `bytes` (read from `source`), laid out for serving over `base` with
/// the PEFT config `config_json`, once its sha256 is the `committed` one.
pub fn verified_adapter(
	base: &Model,
	job: u64,
	source: &str,
	bytes: &[u8],
	committed: [u8; 32],
	config_json: &[u8],
) -> Result<DetachedAdapter, NotServed> {
	let actual = adapter::sha256(bytes);
	if actual != committed {
		return Err(NotServed::Refused(format!(
			"refusing job {job}'s adapter from {source}: its sha256 is {}, but the chain \
			 committed {}",
			hex::encode(actual),
			hex::encode(committed)
		)));
	}
	let config: PeftConfig = serde_json::from_slice(config_json).map_err(|e| {
		NotServed::Failed(format!("job {job}'s published adapter_config.json: {e}"))
	})?;
	adapter::detach(base, &config, bytes)
		.map_err(|e| NotServed::Refused(format!("job {job}'s adapter does not fit this base: {e}")))
}

fn failed(error: impl std::fmt::Display) -> NotServed {
	NotServed::Failed(format!("the chain did not answer: {error}"))
}

fn mib(bytes: usize) -> f64 {
	bytes as f64 / (1024.0 * 1024.0)
}
