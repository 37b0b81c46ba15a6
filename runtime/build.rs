//! Builds the runtime's WebAssembly blob, which the node embeds as `WASM_BINARY`.
fn main() {
	#[cfg(feature = "std")]
	substrate_wasm_builder::WasmBuilder::build_using_defaults();
}
