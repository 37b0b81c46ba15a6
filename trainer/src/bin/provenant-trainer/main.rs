//! `provenant-trainer`: fine-tune a base model with LoRA or QLoRA, evaluate it, chat with it,
//! inspect models and adapters, merge an adapter into its base, and trace an answer to the
//! training sources it repeats.

mod attribute;
mod chat;
mod common;
mod eval;
mod index;
mod inspect;
mod merge;
mod train;

use clap::{Parser, Subcommand};

/// Fine-tune base models with LoRA/QLoRA and produce PEFT-compatible adapters.
#[derive(Parser)]
#[command(name = "provenant-trainer", version)]
struct Cli {
	#[command(subcommand)]
	command: Command,
}

#[derive(Subcommand)]
enum Command {
	/// Train a LoRA or QLoRA adapter on a dataset.
	Train(train::Command),
	/// Report held-out loss and perplexity of a base model, with or without an adapter.
	Eval(eval::Command),
	/// Generate text from a base model plus adapter, one-shot or interactively.
	Chat(chat::Command),
	/// Summarise a model directory, GGUF file or adapter directory.
	Inspect(inspect::Command),
	/// Fold an adapter into its base and write a standalone model directory.
	Merge(merge::Command),
	/// Index training data for span attribution (token ids and their suffix array).
	Index(index::Command),
	/// Answer a prompt and trace the answer's verbatim spans to the training sources.
	Attribute(attribute::Command),
}

fn main() {
	provenant_trainer::cpu::park_idle_candle_workers();
	let cli = Cli::parse();
	provenant_trainer::cpu::keep_freed_memory();
	let result = provenant_trainer::cpu::run_in_pool(|| match cli.command {
		Command::Train(c) => c.execute(),
		Command::Eval(c) => c.execute(),
		Command::Chat(c) => c.execute(),
		Command::Inspect(c) => c.execute(),
		Command::Merge(c) => c.execute(),
		Command::Index(c) => c.execute(),
		Command::Attribute(c) => c.execute(),
	});
	if let Err(error) = result {
		eprintln!("error: {error:#}");
		std::process::exit(1);
	}
}
