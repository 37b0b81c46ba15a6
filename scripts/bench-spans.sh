#!/usr/bin/env bash
# Builds the span-attribution index over a generated training set of N tokens (default
# 10,000,000) and times 256-token answer lookups against it; reports the build's memory per
# token and time.
#
# Usage: scripts/bench-spans.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked --workspace --examples >&2
"$CARGO_TARGET_DIR/release/examples/span_bench" "${1:-10000000}"
