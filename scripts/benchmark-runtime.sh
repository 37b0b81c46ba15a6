#!/usr/bin/env bash
# Measures the runtime's base weights and its database weights on this machine and writes
# them to runtime/src/weights/:
#   block_weights.rs, extrinsic_weights.rs   `benchmark overhead`: an empty block, a no-op
#                                            extrinsic
#   paritydb_weights.rs                      `benchmark storage`: ParityDB read and write costs,
#                                            on a dev chain first filled by `provenant-load`
#                                            so the trie is not a toy one
# Usage: scripts/benchmark-runtime.sh [--accounts N]   (default 400 accounts × 20 of each)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
node="$(scripts/bench-node.sh)"
source scripts/env.sh
cargo build --release --locked --workspace >&2
accounts=400
[ "${1:-}" = --accounts ] && accounts="$2"
out=runtime/src/weights

"$node" benchmark overhead --chain dev --wasm-execution compiled --warmup 10 --repeat 50 \
	--weight-path "$out"

source scripts/dev-node.sh
base="$(mktemp -d)"
trap 'kill -9 $node_pid 2>/dev/null; rm -rf "$base"' EXIT
start_dev_node "$node" "$base"
"$CARGO_TARGET_DIR/release/provenant-load" --url "$node_url" --accounts "$accounts"
kill -INT "$node_pid"
wait "$node_pid" || true

# Writes are timed in commits of 1,000 keys, the order of what one busy block writes (the
# default batch, 100,000, is larger than this whole state, so nothing would be timed).
"$node" benchmark storage --dev --database paritydb --base-path "$base" --state-version 1 \
	--batch-size 1000 --weight-path "$out"

# The generated files name this machine's node path, and crates this runtime reaches through the polkadot-sdk umbrella.
sed -i -E \
	-e 's/^(\s*)use sp_core::parameter_types;/\1use polkadot_sdk::frame_support::parameter_types;/' \
	-e 's/\buse sp_weights::/use polkadot_sdk::frame_support::weights::/' \
	-e 's/\buse frame_support::/use polkadot_sdk::frame_support::/' \
	-e "s|$node|scripts/bench-node.sh's provenant-node|" \
	"$out"/block_weights.rs "$out"/extrinsic_weights.rs "$out"/paritydb_weights.rs
