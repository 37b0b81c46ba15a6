//! `provenant-server`: serves one base model and the adapters committed on chain for it,
//! behind an OpenAI-compatible HTTP API.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, sync::Arc};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Parser;
use provenant_client::subxt_signer::{sr25519::Keypair, SecretUri};
use provenant_server::{
	adapters::{Chain, Store},
	api::{self, AppState},
	engine::{Engine, Limits},
	metrics::Metrics,
	payment::Payments,
	studio::{self, Studio},
};
use provenant_trainer::{
	data::Template,
	model::{BuildOptions, Model},
	quant::QuantKind,
};

/// Serve a base model and its committed fine-tunes over an OpenAI-compatible API.
#[derive(Parser)]
#[command(version)]
struct Args {
	/// The base model: a GGUF file or a Hugging Face directory, registered on chain.
	#[arg(long)]
	model: PathBuf,
	/// The node that adapters are checked against (its WebSocket endpoint).
	#[arg(long, default_value = "ws://127.0.0.1:9944")]
	chain: String,
	/// Serve the base model alone, without a chain (no adapters).
	#[arg(long)]
	no_chain: bool,
	/// A trainer worker's work directory: a job's adapter (`job-<id>/adapter/`) and span index
	/// (`job-<id>/train.spans`) are read from here when present, and still checked against the
	/// chain; otherwise the adapter is fetched from the chain.
	#[arg(long)]
	adapters: Option<PathBuf>,
	/// Address to listen on.
	#[arg(long, default_value = "127.0.0.1:8000")]
	listen: SocketAddr,
	/// Memory for cached adapters, in MiB; the least recently used are evicted past it.
	#[arg(long, default_value_t = 1024)]
	cache_mib: usize,
	/// Requests run together in one step.
	#[arg(long, default_value_t = 16)]
	max_batch: usize,
	/// Requests queued or running before new ones get HTTP 429.
	#[arg(long, default_value_t = 64)]
	max_queue: usize,
	/// Prompt tokens a request reads per step, so long prompts do not stall other answers.
	#[arg(long, default_value_t = 256)]
	prefill_chunk: usize,
	/// How the base's linear layers are held: `int8` or `nf4` (read straight from their codes
	/// as each token is decoded), or `f32`.
	#[arg(long, default_value = "int8")]
	quantize: String,
	/// Answer only requests paid for with a voucher on a channel open to this operator: its
	/// secret URI (a dev account such as `//Dave`, or a mnemonic). Without it, answers are free.
	#[arg(long, env = "PROVENANT_OPERATOR_SECRET", hide_env_values = true)]
	operator: Option<String>,
	/// In paid mode, the price per token (prompt and answer), in the smallest unit
	/// (1 PRV = 10^12). Published on chain; channels keep the price they opened with.
	#[arg(long, default_value_t = 1_000_000)]
	price: u128,
	/// In paid mode, the file that records every voucher taken and settled, kept across
	/// restarts so that no payment is forgotten.
	#[arg(long, default_value = "provenant-server-ledger.json")]
	ledger: PathBuf,
	/// Studio's production build (`studio/dist`), served at `/` beside the API; its pages talk
	/// to the node at `--chain`.
	#[arg(long)]
	studio: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
	let args = Args::parse();
	if args.max_batch == 0 || args.max_queue == 0 {
		bail!("--max-batch and --max-queue must be at least 1");
	}
	if args.no_chain && args.operator.is_some() {
		bail!("paid mode (--operator) needs the chain: drop --no-chain");
	}
	if args.price == 0 {
		bail!("--price must be at least 1");
	}
	// Checked before the model loads, so a missing build fails at once.
	let studio = match &args.studio {
		Some(dir) => Some(Arc::new(
			Studio::new(dir.clone(), (!args.no_chain).then(|| args.chain.clone()))
				.map_err(|e| anyhow!("--studio: {e}"))?,
		)),
		None => None,
	};
	let mut checkpoint = provenant_trainer::loader::open(&args.model, None)
		.with_context(|| format!("opening the base model at {}", args.model.display()))?;
	let quant = match args.quantize.as_str() {
		"f32" => None,
		other => Some(
			QuantKind::parse(other)
				.ok_or_else(|| anyhow!("--quantize {other}: choose int8, nf4 or f32"))?,
		),
	};
	let options = BuildOptions { quant, ..BuildOptions::default() };
	let mut model = Model::load(
		&checkpoint.config,
		checkpoint.weights.as_ref(),
		&candle_core::Device::Cpu,
		&options,
	)?;
	if let Some(kind) = quant {
		model.quantize_output(kind)?;
	}
	checkpoint.release_weights();
	let model = Arc::new(model);
	let tokenizer = Arc::new(checkpoint.tokenizer.clone());
	let tokenizer_sha = provenant_worker::fingerprint::sha256_file(&checkpoint.tokenizer_file)?;
	let template = Template::detect(&tokenizer, checkpoint.config.family);
	let mut end_tokens: Vec<u32> =
		template.end_token(&tokenizer, &checkpoint.config).into_iter().collect();
	end_tokens.extend(checkpoint.config.eos_token_id);
	end_tokens.dedup();

	let (chain, payments) = if args.no_chain {
		(None, None)
	} else {
		let reach = || format!("cannot reach a Provenant node at {}", args.chain);
		let client = provenant_client::connect(&args.chain).await.with_context(reach)?;
		let rpc = provenant_client::rpc_client(&args.chain).await.with_context(reach)?;
		let models = provenant_worker::run::registered_models(&client, &args.model).await?;
		println!("base model {} is registered model {}", checkpoint.name, models[0]);
		let payments = match &args.operator {
			None => None,
			Some(secret) => {
				let operator = SecretUri::from_str(secret)
					.ok()
					.and_then(|uri| Keypair::from_uri(&uri).ok())
					.ok_or_else(|| anyhow!("--operator is not a valid secret URI or mnemonic"))?;
				let payments = Payments::start(
					client.clone(),
					rpc.clone(),
					operator,
					args.price,
					args.ledger.clone(),
				)
				.await?;
				println!(
					"paid mode: operator {}, {} per token, ledger {}",
					payments.operator(),
					args.price,
					args.ledger.display()
				);
				Some(payments)
			},
		};
		(Some(Chain { client, rpc, model: models[0] }), payments)
	};
	let metrics = Arc::new(Metrics::default());
	let limits = Limits {
		max_batch: args.max_batch,
		max_queue: args.max_queue,
		prefill_chunk: args.prefill_chunk,
	};
	let engine = Engine::start(model.clone(), tokenizer, limits, metrics.clone());
	// The file's or directory's name: what the operator chose, and free of spaces (a GGUF's
	// own name may have them).
	let base_name = args
		.model
		.file_stem()
		.map(|n| n.to_string_lossy().into_owned())
		.unwrap_or_else(|| checkpoint.name.clone());
	let store = Store::new(
		model,
		base_name.clone(),
		tokenizer_sha,
		chain,
		args.adapters.clone(),
		args.cache_mib * 1024 * 1024,
		metrics.clone(),
	);
	let state = Arc::new(AppState {
		engine,
		store,
		metrics,
		template,
		end_tokens,
		payments,
		evaluating: tokio::sync::Semaphore::new(1),
	});
	let listener = tokio::net::TcpListener::bind(args.listen)
		.await
		.with_context(|| format!("listening on {}", args.listen))?;
	let address = listener.local_addr()?;
	let mut app = api::router(state);
	// One line, printed last: whoever reads it for the address may stop reading after it.
	let studio_note = match studio {
		Some(studio) => {
			app = app.merge(studio::router(studio));
			format!("; Studio at http://{address}/")
		},
		None => String::new(),
	};
	println!(
		"serving {base_name} on http://{address}/v1 (OpenAI API; metrics at /metrics{studio_note})"
	);
	axum::serve(listener, app).await?;
	Ok(())
}
