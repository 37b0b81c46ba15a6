//! `index`: a training set's token ids and their suffix array, for `attribute`.

use crate::common::ModelArgs;
use anyhow::{Context, Result};
use clap::Args;
use provenant_trainer::{
	adapter,
	attribution::{spans::trained_runs, SpanIndex},
	data,
};
use std::{path::PathBuf, time::Instant};

/// Index dataset files for span attribution: each file is one source, numbered from 0 in the
/// order given.
#[derive(Args, Debug)]
pub(crate) struct Command {
	#[command(flatten)]
	model: ModelArgs,
	/// A dataset file (JSON lines, .txt or .md); repeat for each source.
	#[arg(long = "data", required = true)]
	data: Vec<PathBuf>,
	/// Where to write the index.
	#[arg(long)]
	out: PathBuf,
	/// Print a JSON summary instead of text.
	#[arg(long)]
	json: bool,
}

impl Command {
	pub(crate) fn execute(self) -> Result<()> {
		let checkpoint = self.model.open()?;
		let started = Instant::now();
		let mut documents = Vec::new();
		let mut digest = Vec::new();
		for (source, path) in self.data.iter().enumerate() {
			let examples = data::read_dataset(path)?;
			let stream = data::tokenize(&examples, &checkpoint.tokenizer, &checkpoint.config)?;
			digest.extend(adapter::sha256(&std::fs::read(path)?));
			documents.extend(trained_runs(&stream).into_iter().map(|run| (source as u64, run)));
		}
		let tokenizer = std::fs::read(&checkpoint.tokenizer_file).with_context(|| {
			format!("reading the tokenizer {}", checkpoint.tokenizer_file.display())
		})?;
		let index = SpanIndex::build(
			documents,
			checkpoint.config.vocab_size as u32,
			adapter::sha256(&tokenizer),
			adapter::sha256(&digest),
		)?;
		index.save(&self.out)?;
		let seconds = started.elapsed().as_secs_f64();
		let sources: Vec<_> = self
			.data
			.iter()
			.enumerate()
			.map(|(id, path)| serde_json::json!({ "source": id, "file": path }))
			.collect();
		if self.json {
			let summary = serde_json::json!({
				"index": self.out,
				"tokens": index.len(),
				"documents": index.documents(),
				"sources": sources,
				"seconds": seconds,
			});
			println!("{summary}");
		} else {
			let sources = match self.data.len() {
				1 => "1 source".to_string(),
				n => format!("{n} sources"),
			};
			println!(
				"indexed {} tokens in {} documents from {sources} into {} ({seconds:.2} s)",
				index.len(),
				index.documents(),
				self.out.display()
			);
			for (id, path) in self.data.iter().enumerate() {
				println!("  source {id}: {}", path.display());
			}
		}
		Ok(())
	}
}
