#!/usr/bin/env bash
# README command (a): sets up the machine if needed, builds everything and runs the
# single-machine stack:
# - a development chain with JSON-RPC on ws://127.0.0.1:9944;
# - SmolLM2-135M registered as base model (by //Alice) and a trainer worker (//Ferdie, bonded)
#   that trains every job ordered for it;
# - the inference server on http://127.0.0.1:8000/v1 (OpenAI API) serving SmolLM2 and every
#   fine-tune committed for it, and Studio, the web app, at http://127.0.0.1:8000/.
# Extra arguments go to the node, e.g. `scripts/run-dev.sh --base-path /tmp/provenant`.
# Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
scripts/fetch-models.sh

# The same feature set as scripts/test.sh, so both share one compiled tree.
cargo build --release --locked --workspace
scripts/build-studio.sh
bin="$CARGO_TARGET_DIR/release"
state="${PROVENANT_STACK_DIR:-$HOME/.provenant/stack}"
mkdir -p "$state"
export PROVENANT_URL="ws://127.0.0.1:9944"
export PROVENANT_KEYSTORE="$state/keystore.json"
export PROVENANT_PASSWORD="${PROVENANT_PASSWORD:-dev stack}"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM

"$PROVENANT_NODE_BIN" --dev --rpc-port 9944 "$@" >"$state/node.log" 2>&1 &
pids+=($!)
echo "node: logging to $state/node.log"
for _ in $(seq 120); do
	"$bin/provenant" model list >/dev/null 2>&1 && break
	sleep 1
done

# The base model and the worker, unless an earlier run on a kept chain set them up already.
if ! "$bin/provenant" --json model list | grep -q "$(sha256sum "$PROVENANT_SMOLLM2_GGUF" | cut -c1-64)"; then
	"$bin/provenant" model register --path "$PROVENANT_SMOLLM2_GGUF" --licence Apache-2.0 --from //Alice
fi
if ! "$bin/provenant" --json worker status //Ferdie | grep -q '"bond": *"[1-9]'; then
	"$bin/provenant" worker bond 200 --from //Ferdie
fi
"$bin/provenant" worker run --model "$PROVENANT_SMOLLM2_GGUF" --work-dir "$state/worker" \
	--from //Ferdie --quiet >"$state/worker.log" 2>&1 &
pids+=($!)
echo "worker: training jobs for SmolLM2 as //Ferdie, logging to $state/worker.log"
"$bin/provenant-server" --model "$PROVENANT_SMOLLM2_GGUF" --chain "$PROVENANT_URL" \
	--adapters "$state/worker" --studio studio/dist --listen 127.0.0.1:8000 >"$state/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do
	grep -q serving "$state/server.log" && break
	sleep 1
done

cat <<EOF

Provenant is running:
  Studio     http://127.0.0.1:8000/ (open it in a browser; the dev accounts are offered)
  chain      $PROVENANT_URL (polkadot.js apps, the provenant CLI)
  inference  http://127.0.0.1:8000/v1 (any OpenAI client; model "base" or "job-<id>")
  metrics    http://127.0.0.1:9615/metrics (node), http://127.0.0.1:8000/metrics (server)
Try:
  $bin/provenant ask base "What is the capital of France?"
Ctrl-C stops everything.
EOF
wait "${pids[0]}"
