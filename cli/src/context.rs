//! What every command shares: the node URL, the keystore, output mode, and turning what a
//! person types (names, addresses, amounts) into chain values.

use std::{path::PathBuf, str::FromStr};

use anyhow::{anyhow, bail, Context as _, Result};
use provenant_client::{
	subxt::utils::AccountId32,
	subxt_signer::{sr25519::Keypair, SecretUri},
	Client, UNIT,
};

use crate::keystore::Keystore;

/// Options every command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct GlobalArgs {
	/// The node's WebSocket RPC endpoint.
	#[arg(long, global = true, env = "PROVENANT_URL", default_value = "ws://127.0.0.1:9944")]
	url: String,

	/// The encrypted keystore file [default: ~/.provenant/keystore.json].
	#[arg(long, global = true, env = "PROVENANT_KEYSTORE")]
	keystore: Option<PathBuf>,

	/// Print machine-readable JSON instead of text.
	#[arg(long, global = true)]
	json: bool,
}

/// The shared state of one invocation.
pub(crate) struct Context {
	pub(crate) url: String,
	pub(crate) keystore_path: PathBuf,
	pub(crate) json: bool,
}

impl Context {
	pub(crate) fn new(args: GlobalArgs) -> Self {
		let keystore_path = args.keystore.unwrap_or_else(|| {
			let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
			home.join(".provenant").join("keystore.json")
		});
		Self { url: args.url, keystore_path, json: args.json }
	}

	/// A client connected to the node.
	pub(crate) async fn connect(&self) -> Result<Client> {
		provenant_client::connect(&self.url).await.with_context(|| {
			format!(
				"cannot reach a Provenant node at {} (is one running? `scripts/run-dev.sh` starts one)",
				self.url
			)
		})
	}

	pub(crate) fn keystore(&self) -> Result<Keystore> {
		Keystore::open(&self.keystore_path)
	}

	/// The password for the keystore: `PROVENANT_PASSWORD`, or asked for on the terminal.
	pub(crate) fn password(&self, prompt: &str) -> Result<String> {
		if let Ok(password) = std::env::var("PROVENANT_PASSWORD") {
			return Ok(password);
		}
		rpassword::prompt_password(prompt).context("reading the password")
	}

	/// The key that signs: a keystore name, or a secret URI such as `//Alice` or a mnemonic.
	pub(crate) fn signer(&self, from: &str) -> Result<Keypair> {
		if looks_like_secret_uri(from) {
			return keypair_from_secret(from);
		}
		let keystore = self.keystore()?;
		let password = self.password(&format!("password for key '{from}': "))?;
		keypair_from_secret(&keystore.secret(from, &password)?)
	}

	/// An account: an SS58 address, a keystore name, or a secret URI such as `//Bob`.
	pub(crate) fn account(&self, who: &str) -> Result<AccountId32> {
		if let Ok(account) = AccountId32::from_str(who) {
			return Ok(account);
		}
		if looks_like_secret_uri(who) {
			return Ok(keypair_from_secret(who)?.public_key().to_account_id());
		}
		let keystore = self.keystore()?;
		let key = keystore.get(who).ok_or_else(|| {
			anyhow!(
				"'{who}' is neither an SS58 address nor a key in {}",
				self.keystore_path.display()
			)
		})?;
		AccountId32::from_str(&key.address).map_err(|e| anyhow!("stored address of '{who}': {e}"))
	}

	/// Prints `human` for people or `json` for scripts.
	pub(crate) fn emit(&self, human: impl std::fmt::Display, json: serde_json::Value) {
		if self.json {
			println!("{json}");
		} else {
			println!("{human}");
		}
	}
}

fn looks_like_secret_uri(text: &str) -> bool {
	text.starts_with("//") || text.split_whitespace().count() >= 12
}

/// An sr25519 keypair from a mnemonic or secret URI.
pub(crate) fn keypair_from_secret(secret: &str) -> Result<Keypair> {
	let uri = SecretUri::from_str(secret).map_err(|e| anyhow!("not a valid secret: {e}"))?;
	Keypair::from_uri(&uri).map_err(|e| anyhow!("not a valid secret: {e}"))
}

/// Parses an amount of PRV such as `12`, `0.5` or `1.000000000001` into plancks.
pub(crate) fn parse_prv(text: &str) -> Result<u128> {
	let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
	if whole.is_empty() && fraction.is_empty() {
		bail!("'{text}' is not an amount");
	}
	if fraction.len() > 12 {
		bail!("'{text}' has more than 12 decimals; 1 planck is 0.000000000001 PRV");
	}
	let whole: u128 = if whole.is_empty() {
		0
	} else {
		whole.parse().with_context(|| format!("'{text}' is not an amount"))?
	};
	let fraction: u128 =
		format!("{fraction:0<12}").parse().with_context(|| format!("'{text}' is not an amount"))?;
	whole
		.checked_mul(UNIT)
		.and_then(|plancks| plancks.checked_add(fraction))
		.ok_or_else(|| anyhow!("'{text}' is too large"))
}

/// Formats plancks as PRV, without trailing zeros.
pub(crate) fn format_prv(plancks: u128) -> String {
	let whole = plancks / UNIT;
	let fraction = plancks % UNIT;
	if fraction == 0 {
		format!("{whole} PRV")
	} else {
		let digits = format!("{fraction:012}");
		format!("{whole}.{} PRV", digits.trim_end_matches('0'))
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn amounts_round_trip_and_bad_ones_are_named() {
		assert_eq!(parse_prv("12").unwrap(), 12 * UNIT);
		assert_eq!(parse_prv("0.5").unwrap(), UNIT / 2);
		assert_eq!(parse_prv(".000000000001").unwrap(), 1);
		assert_eq!(format_prv(12 * UNIT + UNIT / 4), "12.25 PRV");
		assert_eq!(format_prv(3 * UNIT), "3 PRV");
		assert!(parse_prv("1.0000000000001").unwrap_err().to_string().contains("12 decimals"));
		assert!(parse_prv("ten").unwrap_err().to_string().contains("not an amount"));
	}

	#[test]
	fn dev_uris_and_addresses_resolve_to_accounts() {
		let context = Context::new(GlobalArgs {
			url: String::new(),
			keystore: Some("/nonexistent".into()),
			json: false,
		});
		let alice = context.account("//Alice").unwrap();
		assert_eq!(context.account(&alice.to_string()).unwrap(), alice);
		assert!(context
			.account("nobody")
			.unwrap_err()
			.to_string()
			.contains("neither an SS58 address"));
	}
}
