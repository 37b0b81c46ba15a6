//! What every subcommand shares: opening a base model and building the decoder around it.

use anyhow::{Context, Result};
use clap::Args;
use provenant_trainer::{
	adapter,
	data::{self, Template},
	loader::{self, Checkpoint},
	model::{BuildOptions, Model},
};
use std::path::{Path, PathBuf};

/// Where the base model is.
#[derive(Args, Clone, Debug)]
pub(crate) struct ModelArgs {
	/// A Hugging Face model directory (config.json, *.safetensors, tokenizer.json) or a GGUF file.
	#[arg(long)]
	pub(crate) model: PathBuf,
	/// A tokenizer.json to use instead of the model's own.
	#[arg(long)]
	pub(crate) tokenizer: Option<PathBuf>,
	/// Run on the first CUDA GPU (needs a build with the `cuda` feature).
	#[arg(long)]
	pub(crate) cuda: bool,
}

impl ModelArgs {
	pub(crate) fn device(&self) -> Result<candle_core::Device> {
		if self.cuda {
			candle_core::Device::new_cuda(0)
				.context("no CUDA device (is the trainer built with --features cuda?)")
		} else {
			Ok(candle_core::Device::Cpu)
		}
	}

	pub(crate) fn open(&self) -> Result<Checkpoint> {
		Ok(loader::open(&self.model, self.tokenizer.as_deref())?)
	}
}

/// A base model and, optionally, an adapter to apply to it.
#[derive(Args, Clone, Debug)]
pub(crate) struct AdaptedModelArgs {
	#[command(flatten)]
	pub(crate) base: ModelArgs,
	/// An adapter directory to apply (adapter_config.json, adapter_model.safetensors).
	#[arg(long)]
	pub(crate) adapter: Option<PathBuf>,
}

impl AdaptedModelArgs {
	pub(crate) fn load(&self) -> Result<(Checkpoint, Model)> {
		let (mut checkpoint, model) = model_with_adapter(&self.base, self.adapter.as_deref())?;
		checkpoint.release_weights();
		Ok((checkpoint, model))
	}
}

/// Opens the base and, if given, loads an adapter directory onto it.
pub(crate) fn model_with_adapter(
	args: &ModelArgs,
	adapter_dir: Option<&Path>,
) -> Result<(Checkpoint, Model)> {
	let checkpoint = args.open()?;
	let device = args.device()?;
	let options = match adapter_dir {
		Some(dir) => {
			let config = adapter::read_config(dir)?;
			let settings = config.settings();
			settings.validate(checkpoint.config.family)?;
			BuildOptions { lora: Some(settings), ..BuildOptions::default() }
		},
		None => BuildOptions::default(),
	};
	let model = Model::load(&checkpoint.config, checkpoint.weights.as_ref(), &device, &options)?;
	if let Some(dir) = adapter_dir {
		adapter::load_weights(&model, dir, &device)?;
	}
	Ok((checkpoint, model))
}

/// The token ids of `prompt` (wrapped in the model's chat template unless `raw`), and the
/// tokens that end an answer.
pub(crate) fn prompt_and_stops(
	checkpoint: &Checkpoint,
	prompt: &str,
	raw: bool,
) -> Result<(Vec<u32>, Vec<u32>)> {
	let template = Template::detect(&checkpoint.tokenizer, checkpoint.config.family);
	let stop = template
		.end_token(&checkpoint.tokenizer, &checkpoint.config)
		.into_iter()
		.chain(checkpoint.config.eos_token_id)
		.collect();
	let text = if raw { prompt.to_string() } else { template.prompt(prompt) };
	Ok((data::encode(&checkpoint.tokenizer, &text, true)?, stop))
}
