#!/usr/bin/env bash
# Builds the node with `--features runtime-benchmarks` and prints its path. Sourced by the
# benchmark scripts. It uses a target directory of its own, so the everyday build in
# $CARGO_TARGET_DIR keeps its feature set (and its wasm runtime) intact.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
export CARGO_TARGET_DIR="${PROVENANT_BENCH_TARGET_DIR:-$HOME/.cache/provenant/target-bench}"
# frame-benchmarking-cli embeds a test runtime for `benchmark storage --mode validate-block`,
# which these scripts do not use; its wasm build cannot find itself in this workspace's
# metadata, so skip it.
export SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD=1
cargo build --release --locked -p provenant-node --features runtime-benchmarks >&2
echo "$CARGO_TARGET_DIR/release/provenant-node"
