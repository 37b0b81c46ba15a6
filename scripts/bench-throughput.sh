#!/usr/bin/env bash
# Throughput of data contributions against plain transfers, measured in the same run on a
# fresh dev node, plus the inclusion time of one 5 MiB file and the node's memory.
# Usage: scripts/bench-throughput.sh [--accounts N] [--per-account K] [--file-bytes B]
# Prints one JSON object; see README "Benchmarks".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
cargo build --release --locked --workspace >&2

source scripts/dev-node.sh
base="$(mktemp -d)"
trap 'kill -9 $node_pid 2>/dev/null; rm -rf "$base"' EXIT
start_dev_node "$PROVENANT_NODE_BIN" "$base"

report=$("$CARGO_TARGET_DIR/release/provenant-load" --url "$node_url" "$@")
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$node_pid/status")
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$node_pid/status")
python3 - "$report" "$rss_kib" "$peak_kib" <<'PY'
import json, sys
report = json.loads(sys.argv[1])
report["nodeRssMiB"] = round(int(sys.argv[2]) / 1024, 1)
report["nodePeakRssMiB"] = round(int(sys.argv[3]) / 1024, 1)
print(json.dumps(report, indent=2))
PY
