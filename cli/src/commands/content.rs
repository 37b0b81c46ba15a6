//! `provenant content get <hash> [-o file]`: fetch stored bytes and verify their hash.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};
use serde_json::json;

use crate::{chain, context::Context};

/// Stored content.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Fetch the bytes of a contribution by its blake2-256 hash, and check them.
	Get {
		/// The content hash, `0x`-hex.
		hash: String,
		/// Write the bytes here instead of standard output.
		#[arg(short, long)]
		output: Option<PathBuf>,
	},
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let Command::Get { hash, output } = self;
		let wanted: [u8; 32] = hex::decode(hash.trim_start_matches("0x"))
			.ok()
			.and_then(|bytes| bytes.try_into().ok())
			.ok_or_else(|| anyhow!("'{hash}' is not a 32-byte hex hash"))?;
		let bytes = chain::content(context, &wanted).await?;
		match output {
			Some(path) => {
				std::fs::write(&path, &bytes)
					.with_context(|| format!("writing {}", path.display()))?;
				context.emit(
					format!("{} bytes, hash verified, written to {}", bytes.len(), path.display()),
					json!({ "hash": format!("0x{}", hex::encode(wanted)), "size": bytes.len(), "file": path.display().to_string(), "verified": true }),
				);
			},
			None => {
				use std::io::Write;
				std::io::stdout().write_all(&bytes)?;
			},
		}
		Ok(())
	}
}
