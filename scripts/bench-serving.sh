#!/usr/bin/env bash
# Serving benchmark: provenant-server's scheduler on SmolLM2-135M (the GGUF of
# scripts/fetch-models.sh) beside llama.cpp on the same file with the same 2 threads, in one run.
# - single stream: time to first token and decode tokens/s, base and with an adapter (r=16 on
#   every linear layer); targets: ≥ 0.7× llama.cpp's decode, an adapter costing ≤ 10%;
# - 16 concurrent requests over 1, 10 and 100 distinct adapters: aggregate tokens/s; target:
#   100 adapters ≥ 0.8× one;
# - bytes and resident memory per cached adapter.
# llama.cpp comes from PyPI's llama-cpp-python, built from source by pip into
# ~/.cache/provenant/bench-venv on the first run (minutes).
# Usage: scripts/bench-serving.sh [--tokens N] [--repeats N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/fetch-models.sh >&2
cargo build --release --locked --workspace --examples >&2

venv="$HOME/.cache/provenant/bench-venv"
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
	python3 -m venv "$venv"
	CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --quiet "llama-cpp-python==0.3.16" >&2
fi

prompt="Write a short story about a lighthouse keeper and a storm."
tokens=128
repeats=3
while [ $# -gt 0 ]; do
	case "$1" in
	--tokens) tokens="$2"; shift 2 ;;
	--repeats) repeats="$2"; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done

export RAYON_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
ours="$("$CARGO_TARGET_DIR/release/examples/serving_bench" --model "$PROVENANT_SMOLLM2_GGUF" \
	--prompt "$prompt" --tokens "$tokens" --repeats "$repeats")"
theirs="$("$venv/bin/python" scripts/bench_serving_llamacpp.py --model "$PROVENANT_SMOLLM2_GGUF" \
	--prompt "$prompt" --tokens "$tokens" --repeats "$repeats" --threads 2)"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
base, adapter = ours["single"]["base"], ours["single"]["adapter"]
lc = theirs["decodeTokensPerSecond"]
print(f"SmolLM2-135M Q4_1, {ours['promptTokens']}-token prompt, {ours['threads']} threads")
print("| single stream | decode tok/s | time to first token |")
print("| --- | --- | --- |")
print(f"| llama.cpp {theirs['version']} | {lc:.1f} | {theirs['ttftSeconds']*1000:.0f} ms |")
print(f"| provenant, base | {base['decodeTokensPerSecond']:.1f} ({base['decodeTokensPerSecond']/lc:.2f}×) | {base['ttftSeconds']*1000:.0f} ms |")
cost = 1 - adapter["decodeTokensPerSecond"] / base["decodeTokensPerSecond"]
print(f"| provenant, adapter r={ours['adapterRank']} | {adapter['decodeTokensPerSecond']:.1f} (adapter costs {cost*100:.1f}%) | {adapter['ttftSeconds']*1000:.0f} ms |")
one = ours["concurrent"]["1"]["tokensPerSecond"]
print(f"\n| {ours['requests']} concurrent requests over | aggregate tok/s | vs 1 adapter |")
print("| --- | --- | --- |")
for pool, run in ours["concurrent"].items():
    print(f"| {pool} adapter(s) | {run['tokensPerSecond']:.1f} | {run['tokensPerSecond']/one:.2f}× |")
print(f"\nper cached adapter: {ours['adapterBytes']/2**20:.1f} MiB of matrices, {ours['adapterResidentBytes']/2**20:.1f} MiB resident")
PY
