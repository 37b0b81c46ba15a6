//! An encrypted keystore file: each key's secret (a mnemonic or a secret URI) is sealed with
//! ChaCha20-Poly1305 under a key derived from the password with scrypt.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use chacha20poly1305::{
	aead::{Aead, KeyInit},
	ChaCha20Poly1305, Key, Nonce,
};
use serde::{Deserialize, Serialize};

/// scrypt cost: 2^15 × 8 × 128 bytes = 32 MiB and about 0.1 s per unlock.
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

/// One stored key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredKey {
	/// The name a person calls it by.
	pub(crate) name: String,
	/// Its SS58 address (prefix 42).
	pub(crate) address: String,
	/// scrypt salt, hex.
	salt: String,
	/// ChaCha20-Poly1305 nonce, hex.
	nonce: String,
	/// The sealed secret, hex.
	ciphertext: String,
}

/// The keystore file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Keystore {
	version: u32,
	keys: Vec<StoredKey>,
	#[serde(skip)]
	path: PathBuf,
}

fn cipher_for(password: &str, salt: &[u8]) -> Result<ChaCha20Poly1305> {
	let params = scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, 32)
		.map_err(|e| anyhow!("scrypt parameters: {e}"))?;
	let mut key = [0u8; 32];
	scrypt::scrypt(password.as_bytes(), salt, &params, &mut key)
		.map_err(|e| anyhow!("scrypt: {e}"))?;
	Ok(ChaCha20Poly1305::new(Key::from_slice(&key)))
}

fn random<const N: usize>() -> Result<[u8; N]> {
	let mut bytes = [0u8; N];
	getrandom::getrandom(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
	Ok(bytes)
}

impl Keystore {
	/// Opens the keystore at `path`, or an empty one if the file does not exist yet.
	pub(crate) fn open(path: &Path) -> Result<Self> {
		let mut keystore = if path.exists() {
			let text = std::fs::read_to_string(path)
				.with_context(|| format!("reading keystore {}", path.display()))?;
			serde_json::from_str::<Keystore>(&text)
				.with_context(|| format!("keystore {} is not valid", path.display()))?
		} else {
			Keystore { version: 1, ..Default::default() }
		};
		keystore.path = path.to_path_buf();
		Ok(keystore)
	}

	/// The stored keys, without their secrets.
	pub(crate) fn keys(&self) -> &[StoredKey] {
		&self.keys
	}

	/// The key called `name`, if any.
	pub(crate) fn get(&self, name: &str) -> Option<&StoredKey> {
		self.keys.iter().find(|key| key.name == name)
	}

	/// Seals `secret` under `password` and saves it as `name`.
	pub(crate) fn add(
		&mut self,
		name: &str,
		address: String,
		secret: &str,
		password: &str,
	) -> Result<()> {
		if self.get(name).is_some() {
			bail!("a key named '{name}' already exists in {}", self.path.display());
		}
		let salt = random::<16>()?;
		let nonce = random::<12>()?;
		let ciphertext = cipher_for(password, &salt)?
			.encrypt(Nonce::from_slice(&nonce), secret.as_bytes())
			.map_err(|_| anyhow!("encryption failed"))?;
		self.keys.push(StoredKey {
			name: name.to_string(),
			address,
			salt: hex::encode(salt),
			nonce: hex::encode(nonce),
			ciphertext: hex::encode(ciphertext),
		});
		self.save()
	}

	/// The secret of `name`, unsealed with `password`.
	pub(crate) fn secret(&self, name: &str, password: &str) -> Result<String> {
		let key = self
			.get(name)
			.ok_or_else(|| anyhow!("no key named '{name}' in {}", self.path.display()))?;
		let salt = hex::decode(&key.salt)?;
		let nonce = hex::decode(&key.nonce)?;
		let ciphertext = hex::decode(&key.ciphertext)?;
		let plain = cipher_for(password, &salt)?
			.decrypt(Nonce::from_slice(&nonce), ciphertext.as_ref())
			.map_err(|_| anyhow!("wrong password for key '{name}'"))?;
		Ok(String::from_utf8(plain)?)
	}

	fn save(&self) -> Result<()> {
		if let Some(dir) = self.path.parent() {
			std::fs::create_dir_all(dir)?;
		}
		let text = serde_json::to_string_pretty(self)?;
		let temp = self.path.with_extension("tmp");
		std::fs::write(&temp, text)?;
		#[cfg(unix)]
		{
			use std::os::unix::fs::PermissionsExt;
			std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))?;
		}
		std::fs::rename(&temp, &self.path)
			.with_context(|| format!("writing keystore {}", self.path.display()))
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn a_sealed_secret_opens_only_with_its_password() {
		let dir = std::env::temp_dir().join(format!("provenant-keystore-{}", std::process::id()));
		let path = dir.join("keystore.json");
		let mut keystore = Keystore::open(&path).unwrap();
		keystore.add("me", "5Address".into(), "//Secret", "hunter2").unwrap();
		let reopened = Keystore::open(&path).unwrap();
		assert_eq!(reopened.secret("me", "hunter2").unwrap(), "//Secret");
		let wrong = reopened.secret("me", "hunter3").unwrap_err().to_string();
		assert!(wrong.contains("wrong password"), "{wrong}");
		assert!(!std::fs::read_to_string(&path).unwrap().contains("Secret"));
		assert!(keystore.add("me", "x".into(), "y", "z").is_err());
		std::fs::remove_dir_all(dir).unwrap();
	}
}
