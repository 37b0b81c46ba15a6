//! `chat`: generate with a base model and an adapter.

use crate::common::{prompt_and_stops, AdaptedModelArgs};
use anyhow::Result;
use clap::Args;
use provenant_trainer::generate::{self, Sampling};
use std::io::{BufRead, Write};

/// Generate text, one-shot (--prompt) or interactively (one prompt per line on stdin).
#[derive(Args, Debug)]
pub(crate) struct Command {
	#[command(flatten)]
	model: AdaptedModelArgs,
	/// Answer this prompt and exit; without it, read prompts line by line.
	#[arg(long)]
	prompt: Option<String>,
	/// Continue the prompt as plain text instead of wrapping it in the chat template.
	#[arg(long)]
	raw: bool,
	/// The most tokens to generate per answer.
	#[arg(long, default_value_t = 128)]
	max_new_tokens: usize,
	/// 0 for greedy decoding.
	#[arg(long, default_value_t = 0.0)]
	temperature: f64,
	/// Nucleus sampling threshold.
	#[arg(long, default_value_t = 0.9)]
	top_p: f64,
	/// Sampler seed.
	#[arg(long, default_value_t = 0)]
	seed: u64,
}

impl Command {
	pub(crate) fn execute(self) -> Result<()> {
		let sampling =
			Sampling { temperature: self.temperature, top_p: self.top_p, seed: self.seed };
		sampling.validate()?;
		let (checkpoint, model) = self.model.load()?;
		let answer = |prompt: &str| -> Result<()> {
			let (ids, stop) = prompt_and_stops(&checkpoint, prompt, self.raw)?;
			generate::generate(
				&model,
				&checkpoint.tokenizer,
				&ids,
				self.max_new_tokens,
				&stop,
				&sampling,
				|piece| {
					print!("{piece}");
					let _ = std::io::stdout().flush();
				},
			)?;
			println!();
			Ok(())
		};
		match &self.prompt {
			Some(prompt) => answer(prompt),
			None => {
				eprintln!(
					"{} loaded; type a prompt and press enter (ctrl-d to quit)",
					checkpoint.name
				);
				for line in std::io::stdin().lock().lines() {
					let line = line?;
					if !line.trim().is_empty() {
						answer(line.trim())?;
					}
				}
				Ok(())
			},
		}
	}
}
