#!/usr/bin/env bash
# Runs the FRAME benchmarks of Provenant's pallets and writes each pallet's `weights.rs`.
#
# Usage: scripts/benchmark-pallets.sh [pallet_name ...]   (default: every Provenant pallet)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
node="$(scripts/bench-node.sh)"

pallets=("$@")
[ ${#pallets[@]} -eq 0 ] && pallets=(pallet_datanets pallet_validation pallet_rewards pallet_models pallet_inference)
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
