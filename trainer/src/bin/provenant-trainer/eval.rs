//! `eval`: held-out loss and perplexity.

use crate::common::AdaptedModelArgs;
use anyhow::Result;
use clap::Args;
use provenant_trainer::{data, train};
use std::path::PathBuf;

/// Report held-out loss and perplexity.
#[derive(Args, Debug)]
pub(crate) struct Command {
	#[command(flatten)]
	model: AdaptedModelArgs,
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
		let (checkpoint, model) = self.model.load()?;
		train::check_cutoff(self.cutoff_len, &checkpoint.config)?;
		let blocks = data::load_blocks(
			&self.data,
			&checkpoint.tokenizer,
			&checkpoint.config,
			self.cutoff_len,
		)?
		.blocks;
		let tokens: f32 = blocks.iter().map(|b| b.mask.iter().sum::<f32>()).sum();
		let loss = train::evaluate(&model, &blocks, self.batch_size)?;
		println!("tokens {tokens}");
		println!("loss {loss:.4} nats/token");
		println!("perplexity {:.3}", loss.exp());
		Ok(())
	}
}
