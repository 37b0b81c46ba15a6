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
# Usage: scripts/bench-serving.sh [--tokens N] [--repeats N] [--rounds N]
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
repeats=5
rounds=3
while [ $# -gt 0 ]; do
	case "$1" in
	--tokens) tokens="$2"; shift 2 ;;
	--repeats) repeats="$2"; shift 2 ;;
	--rounds) rounds="$2"; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done

export RAYON_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
# This machine's speed drifts by tens of percent over minutes (a shared host), so the single
# streams run in rounds that take turns, provenant then llama.cpp; the table reports medians
# over rounds, of the rates and of ratios taken within a round (the adapter's cost within a
# repeat: its run against the base run just before it).
bench() {
	"$CARGO_TARGET_DIR/release/examples/serving_bench" --model "$PROVENANT_SMOLLM2_GGUF" \
		--prompt "$prompt" --tokens "$tokens" "$@"
}
ours=() theirs=()
for _ in $(seq "$rounds"); do
	ours+=("$(bench --repeats "$repeats" --concurrent-rounds 0)")
	theirs+=("$("$venv/bin/python" scripts/bench_serving_llamacpp.py --model "$PROVENANT_SMOLLM2_GGUF" \
		--prompt "$prompt" --tokens "$tokens" --repeats "$repeats" --threads 2)")
done
concurrent="$(bench --repeats 0 --concurrent-rounds "$rounds")"
python3 - "$concurrent" "${#ours[@]}" "${ours[@]}" "${theirs[@]}" <<'PY'
import json, statistics, sys
concurrent = json.loads(sys.argv[1])
n = int(sys.argv[2])
ours = [json.loads(a) for a in sys.argv[3:3 + n]]
theirs = [json.loads(a) for a in sys.argv[3 + n:]]
med = statistics.median
def single(label, key):
    return med(o["single"][label][key] for o in ours)
lc, lc_first = med(t["decodeTokensPerSecond"] for t in theirs), med(t["ttftSeconds"] for t in theirs)
base, adapter = single("base", "decodeTokensPerSecond"), single("adapter", "decodeTokensPerSecond")
print(f"SmolLM2-135M Q4_1, {ours[0]['promptTokens']}-token prompt, {ours[0]['threads']} threads, "
      f"{ours[0]['quantize']} base, medians of {n} rounds")
print("| single stream | decode tok/s | time to first token |")
print("| --- | --- | --- |")
print(f"| llama.cpp {theirs[0]['version']} | {lc:.1f} | {lc_first*1000:.0f} ms |")
# Ratios are taken within a round (llama.cpp against the base run beside it) or within a repeat
# (the adapter against the base run just before it), then their median over rounds.
ratio = med(o["single"]["base"]["decodeTokensPerSecond"] / t["decodeTokensPerSecond"] for o, t in zip(ours, theirs))
cost = med(o["single"]["adapterCost"] for o in ours)
print(f"| provenant, base | {base:.1f} ({ratio:.2f}×) | {single('base', 'ttftSeconds')*1000:.0f} ms |")
print(f"| provenant, adapter r={ours[0]['adapterRank']} | {adapter:.1f} (adapter costs {cost*100:.1f}%) "
      f"| {single('adapter', 'ttftSeconds')*1000:.0f} ms |")
print("\nround by round, decode tok/s (llama.cpp / base / adapter): " + "; ".join(
    f"{t['decodeTokensPerSecond']:.1f} / {o['single']['base']['decodeTokensPerSecond']:.1f} / "
    f"{o['single']['adapter']['decodeTokensPerSecond']:.1f}" for o, t in zip(ours, theirs)))
rates = concurrent["concurrent"]
one = rates["1"]["tokensPerSecond"]
print(f"\n| {concurrent['requests']} concurrent requests over | aggregate tok/s | vs 1 adapter |")
print("| --- | --- | --- |")
for pool, run in rates.items():
    print(f"| {pool} adapter(s) | {run['tokensPerSecond']:.1f} | {run['tokensPerSecond']/one:.2f}× |")
print(f"\nper cached adapter: {concurrent['adapterBytes']/2**20:.1f} MiB of matrices, "
      f"{concurrent['adapterResidentBytes']/2**20:.1f} MiB resident; checking one's "
      f"{concurrent['adapterFileBytes']/2**20:.1f} MiB file against its sha256 and loading it: "
      f"{concurrent['adapterLoadSeconds']*1000:.0f} ms (median of 100)")
PY
