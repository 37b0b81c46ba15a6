//! `provenant key new|import|list`: sr25519 keys in the encrypted keystore.

use anyhow::{anyhow, Result};
use provenant_client::subxt_signer::bip39::Mnemonic;
use serde_json::json;

use crate::context::{keypair_from_secret, Context};

/// Key management.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Generate a new key with a 12-word mnemonic, shown once, and store it encrypted.
	New {
		/// The name to store the key under.
		name: String,
	},
	/// Store an existing key: a mnemonic, or a secret URI such as `//Alice`.
	Import {
		/// The name to store the key under.
		name: String,
		/// The mnemonic (quote it) or secret URI.
		secret: String,
	},
	/// List stored keys and their addresses.
	List,
}

impl Command {
	pub(crate) fn execute(self, context: &Context) -> Result<()> {
		match self {
			Command::New { name } => {
				let mut entropy = [0u8; 16];
				getrandom::getrandom(&mut entropy).map_err(|e| anyhow!("no randomness: {e}"))?;
				let mnemonic = Mnemonic::from_entropy(&entropy)?.to_string();
				let address = store(context, &name, &mnemonic)?;
				context.emit(
					format!(
						"created key '{name}': {address}\n\nmnemonic (write it down; it is not shown again):\n{mnemonic}"
					),
					json!({ "name": name, "address": address, "mnemonic": mnemonic }),
				);
			},
			Command::Import { name, secret } => {
				let address = store(context, &name, &secret)?;
				context.emit(
					format!("imported key '{name}': {address}"),
					json!({ "name": name, "address": address }),
				);
			},
			Command::List => {
				let keystore = context.keystore()?;
				let keys: Vec<_> = keystore
					.keys()
					.iter()
					.map(|key| json!({ "name": key.name, "address": key.address }))
					.collect();
				let human = if keys.is_empty() {
					format!("no keys in {}", context.keystore_path.display())
				} else {
					keystore
						.keys()
						.iter()
						.map(|key| format!("{:<16} {}", key.name, key.address))
						.collect::<Vec<_>>()
						.join("\n")
				};
				context.emit(human, json!(keys));
			},
		}
		Ok(())
	}
}

/// Seals `secret` under a password and returns the key's address.
fn store(context: &Context, name: &str, secret: &str) -> Result<String> {
	let address = keypair_from_secret(secret)?.public_key().to_account_id().to_string();
	let password = context.password(&format!("new password for key '{name}': "))?;
	context.keystore()?.add(name, address.clone(), secret, &password)?;
	Ok(address)
}
