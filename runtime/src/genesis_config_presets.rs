//! Genesis presets: `development` (Alice alone authors, finalises and is sudo) and
//! `local_testnet` (Alice, Bob, Charlie and Dave are validators). Node chain specs are built
//! from these, so genesis lives in one place.

use crate::{AccountId, BalancesConfig, RuntimeGenesisConfig, SudoConfig, UNIT};
use alloc::{vec, vec::Vec};
use polkadot_sdk::{
	frame_support::build_struct_json_patch,
	sp_consensus_aura::sr25519::AuthorityId as AuraId,
	sp_consensus_grandpa::AuthorityId as GrandpaId,
	sp_genesis_builder::{self, PresetId},
	sp_keyring::{Ed25519Keyring, Sr25519Keyring},
	*,
};
use serde_json::Value;

/// What every well-known dev account holds at genesis: one million PRV.
pub const DEV_ACCOUNT_ENDOWMENT: crate::Balance = 1_000_000 * UNIT;

/// Builds a genesis patch from validators, the sudo key and the funded accounts.
fn testnet_genesis(
	initial_authorities: Vec<(AuraId, GrandpaId)>,
	endowed_accounts: Vec<AccountId>,
	root: AccountId,
	validation: pallet_validation::Params<crate::Balance, crate::BlockNumber>,
	rewards: pallet_rewards::RewardParams<crate::Balance>,
	lease_period: Option<crate::BlockNumber>,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed_accounts
				.iter()
				.cloned()
				.map(|account| (account, DEV_ACCOUNT_ENDOWMENT))
				.collect::<Vec<_>>(),
		},
		aura: pallet_aura::GenesisConfig {
			authorities: initial_authorities
				.iter()
				.map(|(aura, _)| aura.clone())
				.collect::<Vec<_>>(),
		},
		grandpa: pallet_grandpa::GenesisConfig {
			authorities: initial_authorities
				.iter()
				.map(|(_, grandpa)| (grandpa.clone(), 1))
				.collect::<Vec<_>>(),
		},
		sudo: SudoConfig { key: Some(root) },
		validation: pallet_validation::GenesisConfig { params: Some(validation) },
		rewards: pallet_rewards::GenesisConfig { params: Some(rewards) },
		models: pallet_models::GenesisConfig { lease_period },
	})
}

/// The session keys of a well-known dev validator.
fn authority_keys(sr: Sr25519Keyring, ed: Ed25519Keyring) -> (AuraId, GrandpaId) {
	(sr.public().into(), ed.public().into())
}

/// `development`: Alice alone produces and finalises blocks; all dev accounts are funded.
pub fn development_config_genesis() -> Value {
	testnet_genesis(
		vec![authority_keys(Sr25519Keyring::Alice, Ed25519Keyring::Alice)],
		Sr25519Keyring::iter().map(|keyring| keyring.to_account_id()).collect(),
		Sr25519Keyring::Alice.to_account_id(),
		crate::configs::validation::development_params(),
		crate::configs::rewards::development_params(),
		Some(crate::configs::models::DEVELOPMENT_LEASE_PERIOD),
	)
}

/// `local_testnet`: Alice, Bob, Charlie and Dave are validators; GRANDPA needs three of four
/// to finalise, so one may be down.
pub fn local_config_genesis() -> Value {
	testnet_genesis(
		vec![
			authority_keys(Sr25519Keyring::Alice, Ed25519Keyring::Alice),
			authority_keys(Sr25519Keyring::Bob, Ed25519Keyring::Bob),
			authority_keys(Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
			authority_keys(Sr25519Keyring::Dave, Ed25519Keyring::Dave),
		],
		Sr25519Keyring::iter().map(|keyring| keyring.to_account_id()).collect(),
		Sr25519Keyring::Alice.to_account_id(),
		crate::configs::validation::default_params(),
		crate::configs::rewards::default_params(),
		None,
	)
}

/// The JSON patch of a named preset, or `None` for an unknown name.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_ref() {
		sp_genesis_builder::DEV_RUNTIME_PRESET => development_config_genesis(),
		sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => local_config_genesis(),
		_ => return None,
	};
	Some(
		serde_json::to_string(&patch)
			.expect("serialization to json is expected to work. qed.")
			.into_bytes(),
	)
}

/// The names of the presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
	vec![
		PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET),
		PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
	]
}

#[cfg(test)]
mod tests {
	use super::*;
	use polkadot_sdk::sp_runtime::BuildStorage;

	/// Each preset, merged over the default genesis, must build a storage that a node can
	/// start from.
	fn build_preset(name: &str) -> polkadot_sdk::sp_runtime::Storage {
		let patch: Value =
			serde_json::from_slice(&get_preset(&name.into()).expect("preset exists")).unwrap();
		let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
		json_merge(&mut config, patch);
		let config: RuntimeGenesisConfig = serde_json::from_value(config).unwrap();
		config.build_storage().expect("genesis builds")
	}

	fn json_merge(base: &mut Value, patch: Value) {
		match (base, patch) {
			(Value::Object(base), Value::Object(patch)) => {
				for (key, value) in patch {
					json_merge(base.entry(key).or_insert(Value::Null), value);
				}
			},
			(base, patch) => *base = patch,
		}
	}

	#[test]
	fn development_preset_builds_with_alice_as_sole_authority() {
		let storage = build_preset(sp_genesis_builder::DEV_RUNTIME_PRESET);
		polkadot_sdk::sp_io::TestExternalities::new(storage).execute_with(|| {
			assert_eq!(pallet_aura::Authorities::<crate::Runtime>::get().len(), 1);
			assert_eq!(
				pallet_sudo::Key::<crate::Runtime>::get(),
				Some(Sr25519Keyring::Alice.to_account_id())
			);
			let alice = crate::System::account(Sr25519Keyring::Alice.to_account_id());
			assert_eq!(alice.data.free, DEV_ACCOUNT_ENDOWMENT);
			assert_eq!(
				pallet_models::LeasePeriod::<crate::Runtime>::get(),
				crate::configs::models::DEVELOPMENT_LEASE_PERIOD
			);
		});
	}

	#[test]
	fn local_testnet_preset_has_four_validators() {
		let storage = build_preset(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET);
		polkadot_sdk::sp_io::TestExternalities::new(storage).execute_with(|| {
			assert_eq!(pallet_aura::Authorities::<crate::Runtime>::get().len(), 4);
			assert_eq!(crate::Grandpa::grandpa_authorities().len(), 4);
			assert_eq!(
				pallet_models::LeasePeriod::<crate::Runtime>::get(),
				crate::configs::models::DefaultLeasePeriod::get()
			);
		});
	}

	#[test]
	fn unknown_preset_is_none() {
		assert!(get_preset(&"mainnet".into()).is_none());
		assert_eq!(preset_names().len(), 2);
	}
}
