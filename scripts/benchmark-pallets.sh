#!/usr/bin/env bash
# Runs the FRAME benchmarks of Provenant's pallets and writes each pallet's `weights.rs`.
#
# The node is built with `--features runtime-benchmarks` in a target directory of its own, so
# the everyday build in $CARGO_TARGET_DIR keeps its feature set (and its wasm runtime) intact.
# Usage: scripts/benchmark-pallets.sh [pallet_name ...]   (default: every Provenant pallet)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
export CARGO_TARGET_DIR="${PROVENANT_BENCH_TARGET_DIR:-$HOME/.cache/provenant/target-bench}"
# frame-benchmarking-cli embeds a test runtime for `benchmark storage`, which this node does not
# wire; its wasm build cannot find itself in this workspace's metadata, so skip it.
export SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD=1

cargo build --release --locked -p provenant-node --features runtime-benchmarks
node="$CARGO_TARGET_DIR/release/provenant-node"

pallets=("$@")
[ ${#pallets[@]} -eq 0 ] && pallets=(pallet_datanets)
for pallet in "${pallets[@]}"; do
	crate_dir="pallets/${pallet#pallet_}"
	echo "benchmarking $pallet into $crate_dir/src/weights.rs"
	"$node" benchmark pallet \
		--chain dev \
		--pallet "$pallet" \
		--extrinsic '*' \
		--steps "${BENCH_STEPS:-50}" \
		--repeat "${BENCH_REPEAT:-20}" \
		--wasm-execution compiled \
		--template scripts/pallet-weight-template.hbs \
		--output "$crate_dir/src/weights.rs"
done
