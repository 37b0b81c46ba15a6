//! `merge`: fold an adapter into its base.

use crate::common::{model_with_adapter, ModelArgs};
use anyhow::{Context, Result};
use clap::Args;
use provenant_trainer::adapter;
use std::path::PathBuf;

/// Write base + adapter as one standalone HF model directory.
#[derive(Args, Debug)]
pub(crate) struct Command {
	#[command(flatten)]
	model: ModelArgs,
	/// The adapter directory to fold in.
	#[arg(long)]
	adapter: PathBuf,
	/// Directory for config.json, model.safetensors and tokenizer.json.
	#[arg(long)]
	output: PathBuf,
}

impl Command {
	pub(crate) fn execute(self) -> Result<()> {
		let (checkpoint, model) = model_with_adapter(&self.model, Some(&self.adapter))?;
		let tensors = model.merged_checkpoint(checkpoint.weights.as_ref())?;
		std::fs::create_dir_all(&self.output)
			.with_context(|| format!("creating {}", self.output.display()))?;
		let weights = self.output.join("model.safetensors");
		adapter::save_tensors(&tensors, &weights)?;
		std::fs::write(
			self.output.join("config.json"),
			serde_json::to_string_pretty(&checkpoint.hf_config)?,
		)?;
		checkpoint
			.tokenizer
			.save(self.output.join("tokenizer.json"), false)
			.map_err(|e| anyhow::anyhow!("{e}"))?;
		println!("merged model written to {}", self.output.display());
		println!("sha256 {}  model.safetensors", adapter::sha256_file(&weights)?);
		Ok(())
	}
}
