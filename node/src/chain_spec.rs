//! Chain specifications, built from the runtime's genesis presets.

use polkadot_sdk::{sc_service::ChainType, *};
use provenant_runtime::{SS58_PREFIX, TOKEN_DECIMALS, TOKEN_SYMBOL, WASM_BINARY};

/// The chain spec type this node understands. It has no extensions.
pub(crate) type ChainSpec = sc_service::GenericChainSpec;

/// The token's symbol and decimals, so wallets display balances in PRV.
fn token_properties() -> sc_chain_spec::Properties {
	let mut properties = sc_chain_spec::Properties::new();
	properties.insert("tokenSymbol".into(), TOKEN_SYMBOL.into());
	properties.insert("tokenDecimals".into(), TOKEN_DECIMALS.into());
	properties.insert("ss58Format".into(), SS58_PREFIX.into());
	properties
}

fn from_preset(
	name: &str,
	id: &str,
	chain_type: ChainType,
	preset: &str,
) -> Result<ChainSpec, String> {
	let wasm = WASM_BINARY.ok_or_else(|| "the runtime's wasm binary was not built".to_string())?;
	Ok(ChainSpec::builder(wasm, None)
		.with_name(name)
		.with_id(id)
		.with_chain_type(chain_type)
		.with_genesis_config_preset_name(preset)
		.with_properties(token_properties())
		.build())
}

/// `--dev`: one validator (Alice), every dev account funded.
pub(crate) fn development_chain_spec() -> Result<ChainSpec, String> {
	from_preset(
		"Provenant Development",
		"provenant_dev",
		ChainType::Development,
		sp_genesis_builder::DEV_RUNTIME_PRESET,
	)
}

/// `--chain local`: Alice, Bob, Charlie and Dave validate.
pub(crate) fn local_chain_spec() -> Result<ChainSpec, String> {
	from_preset(
		"Provenant Local Testnet",
		"provenant_local",
		ChainType::Local,
		sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET,
	)
}
