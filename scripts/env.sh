# Shared environment for every script: one cargo target directory outside the clone, so CI
# and later sessions reuse what an earlier build compiled.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/provenant/target}"
export PATH="$HOME/.cargo/bin:$PATH"
# Two cores: keep memory in check and leave room for the test nodes.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc)}"
export PROVENANT_NODE_BIN="${PROVENANT_NODE_BIN:-$CARGO_TARGET_DIR/release/provenant-node}"
# The wasm builder looks for Cargo.lock above the target directory; it lives outside the clone,
# so point it at the workspace or the runtime's wasm build would resolve versions of its own.
export WASM_BUILD_WORKSPACE_HINT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The real model of the trainer's tests (scripts/fetch-models.sh puts it here).
export PROVENANT_SMOLLM2_GGUF="${PROVENANT_SMOLLM2_GGUF:-$HOME/.cache/provenant/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
