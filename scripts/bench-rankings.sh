#!/usr/bin/env bash
# Times a leaderboard page and an account's standings against a chain state of N contributors
# in one datanet (default 100,000): the scan and sort the rewards pallet did before, and its
# rank index now, on the same state; checks that both give the same pages and ranks; and times
# the settlement steps that re-rank standings when an epoch turns.
#
# Usage: scripts/bench-rankings.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked --workspace --examples >&2
"$CARGO_TARGET_DIR/release/examples/ranking_bench" "${1:-100000}"
