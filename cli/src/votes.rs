//! Sealed votes waiting for their reveal: one file per vote beside the keystore, holding the
//! ballot and its salt, so a vote survives the command being stopped between commit and reveal.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use codec::{Decode, Encode};
use pallet_validation::{Ballot, Salt};
use provenant_client::subxt::utils::AccountId32;
use serde_json::json;

use crate::context::Context;

/// Where `voter`'s sealed vote on `contribution` waits.
pub(crate) fn path(context: &Context, contribution: u64, voter: &AccountId32) -> PathBuf {
	let dir = context.keystore_path.parent().map(PathBuf::from).unwrap_or_default();
	dir.join("votes").join(format!("{contribution}-{voter}.json"))
}

/// Keeps `ballot` and `salt` at `path`, readable by the owner only.
pub(crate) fn save(path: &Path, ballot: &Ballot, salt: &Salt) -> Result<()> {
	std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
	let record = json!({ "ballot": hex::encode(ballot.encode()), "salt": hex::encode(salt) });
	std::fs::write(path, record.to_string())
		.with_context(|| format!("saving {}", path.display()))?;
	#[cfg(unix)]
	{
		use std::os::unix::fs::PermissionsExt;
		std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
	}
	Ok(())
}

/// The ballot and salt kept at `path`, if there is a vote there.
pub(crate) fn load(path: &Path) -> Result<Option<(Ballot, Salt)>> {
	let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
	let record: serde_json::Value = serde_json::from_str(&text)?;
	let field = |name: &str| {
		record[name]
			.as_str()
			.and_then(|hex_text| hex::decode(hex_text).ok())
			.ok_or_else(|| anyhow!("{} is damaged ({name})", path.display()))
	};
	let ballot = Ballot::decode(&mut &field("ballot")?[..])?;
	let salt: Salt =
		field("salt")?.try_into().map_err(|_| anyhow!("{}: bad salt", path.display()))?;
	Ok(Some((ballot, salt)))
}
