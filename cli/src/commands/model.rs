//! `provenant model register|list|show|retire`: base models, registered by the hashes of
//! their files.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use provenant_client::{
	runtime::{self, runtime_types::pallet_models::types::BaseModel},
	subxt::utils::{AccountId32, Static},
	Client,
};
use provenant_jobspec::Family;
use serde_json::json;

use crate::{
	commands::datanet::submit,
	context::{format_prv, Context},
};

/// Base model registration.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Register a base model by the sha256 of its files; a deposit is held.
	Register(RegisterArgs),
	/// List every registered model.
	List,
	/// Show one model.
	Show {
		/// The model's number.
		model: u32,
	},
	/// Take no new jobs for a model (owner only); its jobs go on.
	Retire {
		/// The model's number.
		model: u32,
		/// The owner: a key name or a dev URI.
		#[arg(long)]
		from: String,
	},
}

/// Options for `model register`.
#[derive(Debug, clap::Args)]
pub(crate) struct RegisterArgs {
	/// The model: a Hugging Face directory (`config.json`, safetensors, `tokenizer.json`) or a
	/// `.gguf` file. Its family and context length are read from it, and its files hashed.
	#[arg(long)]
	path: PathBuf,
	/// The name people will know it by [default: the directory or file name].
	#[arg(long)]
	name: Option<String>,
	/// Its licence, e.g. an SPDX identifier.
	#[arg(long, default_value = "")]
	licence: String,
	/// Where it comes from: a URL, a paper, a publisher.
	#[arg(long, default_value = "")]
	source: String,
	/// The owner: a key name or a dev URI such as `//Alice`.
	#[arg(long)]
	from: String,
}

/// What the chain records of a model's files, read from disk.
pub(crate) struct Fingerprint {
	/// The family, as the job rules name it.
	pub(crate) family: Family,
	/// The name it is known by.
	pub(crate) name: String,
	/// sha256 of each weights file.
	pub(crate) weights: Vec<[u8; 32]>,
	/// sha256 of the tokenizer's file.
	pub(crate) tokenizer: [u8; 32],
	/// The positions it attends over.
	pub(crate) max_positions: u32,
}

/// Opens the model at `path` with the trainer's loader and hashes its files.
pub(crate) fn fingerprint(path: &Path) -> Result<Fingerprint> {
	let checkpoint = provenant_trainer::loader::open(path, None)
		.with_context(|| format!("reading the model at {}", path.display()))?;
	let weights = checkpoint.files.iter().map(|file| sha256_file(file)).collect::<Result<_>>()?;
	Ok(Fingerprint {
		family: checkpoint.config.family.spec(),
		name: checkpoint.name.clone(),
		weights,
		tokenizer: sha256_file(&checkpoint.tokenizer_file)?,
		max_positions: u32::try_from(checkpoint.config.max_positions).unwrap_or(u32::MAX),
	})
}

/// The sha256 of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<[u8; 32]> {
	let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
	Ok(provenant_trainer::adapter::sha256(&bytes))
}

/// Fetches model `id`.
pub(crate) async fn fetch(client: &Client, id: u32) -> Result<BaseModel<AccountId32, u128>> {
	client
		.at_current_block()
		.await?
		.storage()
		.try_fetch(runtime::storage().models().base_models(), (id,))
		.await?
		.map(|value| value.decode())
		.transpose()?
		.ok_or_else(|| anyhow!("there is no model {id}: `provenant model list` shows them"))
}

fn text(bytes: &[u8]) -> String {
	String::from_utf8_lossy(bytes).into_owned()
}

fn describe(id: u32, model: &BaseModel<AccountId32, u128>) -> (String, serde_json::Value) {
	let weights: Vec<String> = model.weights.0.iter().map(hex::encode).collect();
	let family = model.family.0.name();
	let human = format!(
		"model {id}: {} ({family}){}\n  weights:   {}\n  tokenizer: {}\n  positions: {}\n  licence:   {}\n  source:    {}\n  owner:     {}\n  deposit:   {}",
		text(&model.name.0),
		if model.retired { ", retired" } else { "" },
		weights.join("\n             "),
		hex::encode(model.tokenizer),
		model.max_positions,
		text(&model.licence.0),
		text(&model.source.0),
		model.owner,
		format_prv(model.deposit),
	);
	let json = json!({
		"id": id,
		"name": text(&model.name.0),
		"family": family,
		"weights": weights,
		"tokenizer": hex::encode(model.tokenizer),
		"maxPositions": model.max_positions,
		"licence": text(&model.licence.0),
		"source": text(&model.source.0),
		"owner": model.owner.to_string(),
		"deposit": model.deposit.to_string(),
		"retired": model.retired,
	});
	(human, json)
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		match self {
			Command::Register(args) => {
				let print = fingerprint(&args.path)?;
				let client = context.connect().await?;
				let call = runtime::transactions().models().register_model(
					Static(print.family),
					args.name.unwrap_or(print.name).into_bytes(),
					print.weights,
					print.tokenizer,
					print.max_positions,
					args.licence.into_bytes(),
					args.source.into_bytes(),
				);
				let events = submit(context, &client, &args.from, &call)
					.await
					.context("registering the model")?;
				let registered =
					events
						.find_first::<runtime::models::events::ModelRegistered>()
						.ok_or_else(|| anyhow!("the chain reported no ModelRegistered event"))??;
				let (human, json) =
					describe(registered.model, &fetch(&client, registered.model).await?);
				context.emit(format!("registered {human}"), json);
			},
			Command::List => {
				let client = context.connect().await?;
				let at = client.at_current_block().await?;
				let mut entries =
					at.storage().iter(runtime::storage().models().base_models(), ()).await?;
				let mut rows = Vec::new();
				while let Some(entry) = entries.next().await {
					let entry = entry?;
					let (id,) = entry.key()?.decode()?;
					rows.push((id, entry.value().decode()?));
				}
				rows.sort_by_key(|(id, _)| *id);
				let human = if rows.is_empty() {
					"no models yet: register one with `provenant model register`".to_string()
				} else {
					rows.iter()
						.map(|(id, model): &(u32, BaseModel<AccountId32, u128>)| {
							format!(
								"{id:>4}  {:<32} {:<9} {:>6} positions{}",
								text(&model.name.0),
								model.family.0.name(),
								model.max_positions,
								if model.retired { "  retired" } else { "" }
							)
						})
						.collect::<Vec<_>>()
						.join("\n")
				};
				let json: Vec<_> = rows.iter().map(|(id, model)| describe(*id, model).1).collect();
				context.emit(human, json!(json));
			},
			Command::Show { model } => {
				let client = context.connect().await?;
				let (human, json) = describe(model, &fetch(&client, model).await?);
				context.emit(human, json);
			},
			Command::Retire { model, from } => {
				let client = context.connect().await?;
				let call = runtime::transactions().models().retire_model(model);
				submit(context, &client, &from, &call).await.context("retiring the model")?;
				context.emit(
					format!("model {model} retired: it takes no new jobs"),
					json!({ "model": model, "retired": true }),
				);
			},
		}
		Ok(())
	}
}
