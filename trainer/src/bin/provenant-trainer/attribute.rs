//! `attribute`: generate an answer and trace its spans to the training sources that hold them.

use crate::common::{prompt_and_stops, AdaptedModelArgs};
use anyhow::{bail, Result};
use clap::Args;
use provenant_trainer::{
	adapter::{self, hex},
	attribution::SpanIndex,
	generate::{self, Sampling},
};
use std::path::PathBuf;

/// Answer a prompt and show which training sources each verbatim span of the answer came
/// from, with each source's share of the answer.
#[derive(Args, Debug)]
pub(crate) struct Command {
	#[command(flatten)]
	model: AdaptedModelArgs,
	/// The training set's index, from `provenant-trainer index` or a worker.
	#[arg(long)]
	index: PathBuf,
	/// The prompt.
	#[arg(long)]
	prompt: String,
	/// Continue the prompt as plain text instead of wrapping it in the chat template.
	#[arg(long)]
	raw: bool,
	/// The most tokens to generate.
	#[arg(long, default_value_t = 128)]
	max_new_tokens: usize,
	/// The shortest span reported, in tokens.
	#[arg(long, default_value_t = 8)]
	min_span: usize,
	/// A span held by more sources than this is common text and credits no one.
	#[arg(long, default_value_t = 8)]
	max_sources: usize,
	/// Print JSON instead of text.
	#[arg(long)]
	json: bool,
}

impl Command {
	pub(crate) fn execute(self) -> Result<()> {
		let index = SpanIndex::load(&self.index)?;
		let (checkpoint, model) = self.model.load()?;
		let tokenizer_hash = adapter::sha256(&std::fs::read(&checkpoint.tokenizer_file)?);
		if tokenizer_hash != index.tokenizer {
			bail!(
				"{} was built with another tokenizer (sha256 {}) than this model's {} ({}): \
				 rebuild the index with this model",
				self.index.display(),
				hex(&index.tokenizer),
				checkpoint.tokenizer_file.display(),
				hex(&tokenizer_hash)
			);
		}
		let (ids, stop) = prompt_and_stops(&checkpoint, &self.prompt, self.raw)?;
		let answer = generate::generate(
			&model,
			&checkpoint.tokenizer,
			&ids,
			self.max_new_tokens,
			&stop,
			&Sampling::GREEDY,
			|_| {},
		)?;
		let attribution = index.attribute(&answer.ids, self.min_span, self.max_sources)?;
		let decode = |ids: &[u32]| checkpoint.tokenizer.decode(ids, true).unwrap_or_default();
		if self.json {
			let spans: Vec<_> = attribution
				.spans
				.iter()
				.map(|span| {
					serde_json::json!({
						"start": span.start,
						"end": span.end,
						"text": decode(&answer.ids[span.start..span.end]),
						"occurrences": span.occurrences,
						"sources": span.sources,
					})
				})
				.collect();
			let shares: Vec<_> = attribution
				.shares
				.iter()
				.map(|(source, share)| serde_json::json!({ "source": source, "share": share }))
				.collect();
			let report = serde_json::json!({
				"answer": answer.text,
				"tokens": attribution.tokens,
				"covered": attribution.covered,
				"minSpan": self.min_span,
				"spans": spans,
				"shares": shares,
			});
			println!("{report}");
			return Ok(());
		}
		println!("{}\n", answer.text);
		println!(
			"{} of {} tokens are in spans of at least {} tokens found in the training set",
			attribution.covered, attribution.tokens, self.min_span
		);
		for span in &attribution.spans {
			let times = match span.occurrences {
				1 => "1 occurrence".to_string(),
				n => format!("{n} occurrences"),
			};
			let from = if span.sources.is_empty() {
				format!("common text ({times})")
			} else {
				let names: Vec<String> = span.sources.iter().map(u64::to_string).collect();
				format!("source {} ({times})", names.join(", "))
			};
			println!(
				"  tokens {}..{} {:?} ← {from}",
				span.start,
				span.end,
				decode(&answer.ids[span.start..span.end])
			);
		}
		for (source, share) in &attribution.shares {
			println!("  source {source}: {:.1}%", share * 100.0);
		}
		Ok(())
	}
}
