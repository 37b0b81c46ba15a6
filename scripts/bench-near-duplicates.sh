#!/usr/bin/env bash
# Times one near-duplicate check against a datanet of N files (default 100,000): the linear
# scan the validator worker used before, and the LSH / multi-index it uses now, on the same
# generated set with planted near-duplicates; reports the index's recall against the scan.
#
# Usage: scripts/bench-near-duplicates.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked --workspace --examples >&2
"$CARGO_TARGET_DIR/release/examples/near_duplicate_bench" "${1:-100000}"
