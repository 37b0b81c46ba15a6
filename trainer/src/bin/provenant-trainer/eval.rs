//! `eval`: held-out loss and perplexity.

use crate::common::{model_with_adapter, ModelArgs};
use anyhow::{bail, Result};
use clap::Args;
use provenant_trainer::{data, train};
use std::path::PathBuf;

/// Report held-out loss and perplexity.
#[derive(Args, Debug)]
pub(crate) struct Command {
	#[command(flatten)]
	model: ModelArgs,
	/// An adapter directory to apply (adapter_config.json, adapter_model.safetensors).
	#[arg(long)]
	adapter: Option<PathBuf>,
	/// Held-out data: JSONL (text, prompt/response or Alpaca fields), .txt or .md.
	#[arg(long)]
	data: PathBuf,
	/// Tokens per evaluation block.
	#[arg(long, default_value_t = 256)]
	cutoff_len: usize,
	/// Blocks per forward pass.
	#[arg(long, default_value_t = 4)]
	batch_size: usize,
}

impl Command {
	pub(crate) fn execute(self) -> Result<()> {
		let (checkpoint, model) = model_with_adapter(&self.model, self.adapter.as_deref())?;
		if self.cutoff_len < 2 || self.cutoff_len > checkpoint.config.max_positions {
			bail!(
				"invalid hyper-parameter cutoff_len: {} is outside 2..={} (the model's positions)",
				self.cutoff_len,
				checkpoint.config.max_positions
			);
		}
		let examples = data::read_dataset(&self.data)?;
		let stream = data::tokenize(&examples, &checkpoint.tokenizer, &checkpoint.config)?;
		let blocks = data::pack(&stream, self.cutoff_len, checkpoint.config.eos_token_id.unwrap_or(0));
		let tokens: f32 = blocks.iter().map(|b| b.mask.iter().sum::<f32>()).sum();
		let loss = train::evaluate(&model, &blocks, self.batch_size)?;
		println!("tokens {tokens}");
		println!("loss {loss:.4} nats/token");
		println!("perplexity {:.3}", loss.exp());
		Ok(())
	}
}
