//! `provenant model register|list|show|retire`: base models, registered by the hashes of
//! their files.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};
use provenant_client::{
	runtime::{self, runtime_types::pallet_models::types::BaseModel},
	subxt::utils::{AccountId32, Static},
};
use provenant_worker::fingerprint::fingerprint;
use serde_json::json;

use crate::{
	chain::{self, submit, text},
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
	Retire(RetireArgs),
}

/// Options for `model retire`.
#[derive(Debug, clap::Args)]
pub(crate) struct RetireArgs {
	/// The model's number.
	model: u32,
	/// The owner: a key name or a dev URI.
	#[arg(long)]
	from: String,
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
			Command::Register(args) => args.execute(context).await,
			Command::List => list(context).await,
			Command::Show { model } => {
				let client = context.connect().await?;
				let (human, json) = describe(model, &chain::model(&client, model).await?);
				context.emit(human, json);
				Ok(())
			},
			Command::Retire(args) => args.execute(context).await,
		}
	}
}

impl RegisterArgs {
	async fn execute(self, context: &Context) -> Result<()> {
		let print = fingerprint(&self.path)?;
		let client = context.connect().await?;
		let call = runtime::transactions().models().register_model(
			Static(print.family),
			self.name.unwrap_or(print.name).into_bytes(),
			print.weights,
			print.tokenizer,
			print.max_positions,
			self.licence.into_bytes(),
			self.source.into_bytes(),
		);
		let events =
			submit(context, &client, &self.from, &call).await.context("registering the model")?;
		let registered = events
			.find_first::<runtime::models::events::ModelRegistered>()
			.ok_or_else(|| anyhow!("the chain reported no ModelRegistered event"))??;
		let (human, json) =
			describe(registered.model, &chain::model(&client, registered.model).await?);
		context.emit(format!("registered {human}"), json);
		Ok(())
	}
}

async fn list(context: &Context) -> Result<()> {
	let client = context.connect().await?;
	let rows = chain::all(&client, runtime::storage().models().base_models()).await?;
	let human = if rows.is_empty() {
		"no models yet: register one with `provenant model register`".to_string()
	} else {
		rows.iter()
			.map(|(id, model)| {
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
	Ok(())
}

impl RetireArgs {
	async fn execute(self, context: &Context) -> Result<()> {
		let model = self.model;
		let client = context.connect().await?;
		let call = runtime::transactions().models().retire_model(model);
		submit(context, &client, &self.from, &call).await.context("retiring the model")?;
		context.emit(
			format!("model {model} retired: it takes no new jobs"),
			json!({ "model": model, "retired": true }),
		);
		Ok(())
	}
}
