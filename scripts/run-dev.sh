#!/usr/bin/env bash
# README command (a): sets up the machine if needed, builds the node and runs the
# single-machine stack: a development chain with RPC on ws://127.0.0.1:9944.
# Extra arguments go to the node, e.g. `scripts/run-dev.sh --base-path /tmp/provenant`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

# The same feature set as scripts/test.sh, so both share one compiled tree.
cargo build --release --locked --workspace
exec "$PROVENANT_NODE_BIN" --dev --rpc-port 9944 "$@"
