//! Builds the runtime's WebAssembly blob, which the node embeds as `WASM_BINARY`.
fn main() {
	#[cfg(feature = "std")]
	polkadot_sdk::substrate_wasm_builder::WasmBuilder::build_using_defaults();
}
