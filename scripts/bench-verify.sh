#!/usr/bin/env bash
# Times what `provenant verify` computes: one inclusion proof, and a whole training set of N
# contributions (default 1,000) rebuilt from its log entries. The node queries are not
# included.
#
# Usage: scripts/bench-verify.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked --workspace --examples >&2
"$CARGO_TARGET_DIR/release/examples/verify_bench" "${1:-1000}"
