//! A local base model as the models pallet records it: the sha256 of each of its files. The
//! CLI registers a model with it, and the worker and `provenant verify` match local copies by it.

use std::path::Path;

use anyhow::{Context as _, Result};
use provenant_jobspec::Family;

/// What the chain records of a model's files, read from disk.
#[derive(Clone, Debug)]
pub struct Fingerprint {
	/// The family, as the job rules name it.
	pub family: Family,
	/// The name it is known by.
	pub name: String,
	/// sha256 of each weights file, in the loader's order.
	pub weights: Vec<[u8; 32]>,
	/// sha256 of the tokenizer's file.
	pub tokenizer: [u8; 32],
	/// The positions it attends over.
	pub max_positions: u32,
}

/// Opens the model at `path` with the trainer's loader and hashes its files.
pub fn fingerprint(path: &Path) -> Result<Fingerprint> {
	let checkpoint = provenant_trainer::loader::open(path, None)
		.with_context(|| format!("reading the model at {}", path.display()))?;
	let weights = checkpoint.files.iter().map(|file| sha256_file(file)).collect::<Result<_>>()?;
	Ok(Fingerprint {
		family: checkpoint.config.family.spec(),
		name: checkpoint.name.clone(),
		weights,
		tokenizer: sha256_file(&checkpoint.tokenizer_file)?,
		max_positions: u32::try_from(checkpoint.config.max_positions).unwrap_or(u32::MAX),
	})
}

/// The sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
	let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
	Ok(provenant_trainer::adapter::sha256(&bytes))
}
