//! A job's training set as training examples: each contribution's bytes turned into text by
//! its format, a held-out split chosen by the job's seed, and each contribution's weight in
//! the fee split (the tokens it adds to training).
//!
//! Everything here is a pure function of the job and the contributions' bytes, so the same
//! job gives the same examples, split and weights on any machine.

use std::{collections::BTreeSet, path::Path};

use anyhow::Result;
use pallet_datanets::Format;
use provenant_trainer::{
	config::ModelConfig,
	data::{self, Example, Layout},
};
use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

/// One member of a training set, with its bytes.
#[derive(Clone, Debug)]
pub struct Contribution {
	/// Its identifier.
	pub id: u64,
	/// Its detected format.
	pub format: Format,
	/// Its bytes, hash-checked.
	pub bytes: Vec<u8>,
}

/// The text examples a contribution holds. Plain text and Markdown are one example; JSON lines
/// are one per line (text, prompt/response or Alpaca fields); CSV is its rows as text. PDF and
/// DOCX hold no text the worker can extract yet: they give no example, weigh nothing, and are
/// reported.
pub fn examples(contribution: &Contribution) -> Result<Vec<Example>> {
	let origin = Path::new("contribution").join(contribution.id.to_string());
	let layout = match contribution.format {
		Format::Txt | Format::Csv => Layout::Plain,
		Format::Jsonl => Layout::JsonLines,
		_ => return Ok(Vec::new()),
	};
	let text = String::from_utf8_lossy(&contribution.bytes);
	match data::parse_dataset(&text, layout, &origin) {
		Ok(examples) => Ok(examples),
		// An empty file is accepted by validators only if it has no text to learn; it weighs
		// nothing.
		Err(provenant_trainer::Error::EmptyDataset(_)) => Ok(Vec::new()),
		Err(e) => Err(e.into()),
	}
}

/// The contributions held out for the eval loss: `fraction` millionths of them (rounded down,
/// and never all), ranked by `sha256(seed ‖ id)`.
pub fn held_out(ids: &[u64], seed: u64, fraction: u32) -> BTreeSet<u64> {
	let count = (ids.len() as u64 * u64::from(fraction) / 1_000_000) as usize;
	let count = count.min(ids.len().saturating_sub(1));
	let mut ranked: Vec<([u8; 32], u64)> = ids
		.iter()
		.map(|id| {
			let mut hasher = Sha256::new();
			hasher.update(seed.to_le_bytes());
			hasher.update(id.to_le_bytes());
			(hasher.finalize().into(), *id)
		})
		.collect();
	ranked.sort();
	ranked.into_iter().take(count).map(|(_, id)| id).collect()
}

/// The tokens that `examples` add to training: the weight of their contribution in the
/// contributors' part of the fee.
pub fn tokens(examples: &[Example], tokenizer: &Tokenizer, config: &ModelConfig) -> Result<u64> {
	Ok(data::tokenize(examples, tokenizer, config)?.trained.iter().filter(|t| **t).count() as u64)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn contribution(id: u64, format: Format, text: &str) -> Contribution {
		Contribution { id, format, bytes: text.as_bytes().to_vec() }
	}

	#[test]
	fn each_text_format_becomes_examples() {
		let plain = examples(&contribution(1, Format::Txt, "The harbour is quiet.")).unwrap();
		assert_eq!(plain.len(), 1);
		assert_eq!(plain[0].response, "The harbour is quiet.");
		let lines = "{\"text\": \"one\"}\n{\"prompt\": \"Q\", \"response\": \"A\"}\n";
		let jsonl = examples(&contribution(2, Format::Jsonl, lines)).unwrap();
		assert_eq!(jsonl.len(), 2);
		assert_eq!(jsonl[1].prompt.as_deref(), Some("Q"));
		let csv = examples(&contribution(3, Format::Csv, "name,age\nAda,36\n")).unwrap();
		assert_eq!(csv[0].response, "name,age\nAda,36\n");
		assert!(examples(&contribution(4, Format::Pdf, "%PDF-1.4")).unwrap().is_empty());
		assert!(examples(&contribution(5, Format::Txt, "  \n")).unwrap().is_empty());
	}

	#[test]
	fn a_broken_json_line_names_the_contribution_and_line() {
		let error = examples(&contribution(7, Format::Jsonl, "{\"text\": \"ok\"}\n{oops\n"))
			.unwrap_err()
			.to_string();
		assert!(error.contains("contribution/7:2"), "{error}");
	}

	#[test]
	fn the_held_out_split_is_a_function_of_the_seed() {
		let ids: Vec<u64> = (0..20).collect();
		let split = held_out(&ids, 42, 100_000);
		assert_eq!(split.len(), 2);
		assert_eq!(split, held_out(&ids, 42, 100_000));
		assert_ne!(split, held_out(&ids, 43, 100_000));
		assert!(held_out(&ids, 42, 0).is_empty());
		// Never everything: one contribution always trains.
		assert_eq!(held_out(&[5], 1, 500_000).len(), 0);
		assert_eq!(held_out(&[5, 6], 1, 500_000).len(), 1);
	}
}
