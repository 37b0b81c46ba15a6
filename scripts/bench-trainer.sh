#!/usr/bin/env bash
# Training throughput and peak memory of provenant-trainer against PyTorch + PEFT, on this
# machine's CPU, same configs, same batch (8 × 128 tokens), LoRA r=8 on the attention
# projections, AdamW, 2 threads. PyTorch, transformers and PEFT go into a throwaway venv.
#
#   scripts/bench-trainer.sh [--steps N] [CONFIG ...]
#   configs: llama-4l gpt2-small llama-100m smollm2 deepseek-v2
#
# Each implementation runs three times: PyTorch in f32 and with its forward pass under CPU bf16
# and f16 autocast (weights, adapters and optimiser state in f32), as LLaMA-Factory trains on
# 16-bit hardware; the trainer in f32 and with `--compute-dtype bf16` and `f16`. The last line
# of each config is the trainer's fastest rate over PyTorch's fastest.
# Also runs the trainer with a QLoRA (NF4) base; PyTorch has no CPU 4-bit path to compare with.
# PROVENANT_TORCH_VENV names a venv with torch, transformers and peft to use instead.
# Each LoRA adapter of an HF-directory config is loaded back with PEFT (`peft-check`), and the
# script stops if PEFT's logits differ from the trainer's merged model.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
steps=10
configs=()
while [[ $# -gt 0 ]]; do
	case "$1" in
		--steps) steps="$2"; shift 2 ;;
		*) configs+=("$1"); shift ;;
	esac
done
[[ ${#configs[@]} -eq 0 ]] && configs=(llama-4l gpt2-small llama-100m smollm2 deepseek-v2)

# The workspace build, as the other scripts do: `-p` alone would resolve other features and
# compile candle a second time beside the warm tree.
cargo build --release --locked --workspace
scripts/fetch-models.sh
trainer="$CARGO_TARGET_DIR/release/provenant-trainer"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="${PROVENANT_TORCH_VENV:-$work/venv}"
if [[ ! -x "$venv/bin/python" ]]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet torch transformers peft gguf
fi
py="$venv/bin/python"

peak_rss_mib() { awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$1"; }

printf '%-12s %-22s %12s %14s\n' config implementation tokens/s "peak RSS MiB"
for config in "${configs[@]}"; do
	dir="$work/$config"
	"$py" scripts/bench_trainer.py make "$config" "$dir" "$steps"
	targets=$("$py" scripts/bench_trainer.py targets "$config")
	model="$dir"
	[[ "$config" == smollm2 ]] && model="$PROVENANT_SMOLLM2_GGUF"
	ours=0
	for run in lora:f32 lora:bf16 lora:f16 qlora:f32; do
		method=${run%:*} compute=${run#*:}
		out="$work/out-$config-$method-$compute"
		/usr/bin/time -v -o "$work/time" "$trainer" train --model "$model" --data "$dir/data.jsonl" \
			--output "$out" --method "$method" --bits 4 --compute-dtype "$compute" --rank 8 \
			--alpha 16 --dropout 0 --target "$targets" --batch-size 8 --cutoff-len 128 --epochs 1 \
			--max-steps $((steps + 1)) --lr 1e-4 --schedule constant --quiet >/dev/null
		# The first step warms caches and allocators, as PyTorch's warm-up step does.
		rate=$(tail -n +2 "$out/progress.jsonl" | "$py" -c 'import sys, json; r = [json.loads(l)["tokens_per_s"] for l in sys.stdin]; print(f"{len(r) / sum(1 / x for x in r):.0f}")')
		printf '%-12s %-22s %12s %14s\n' "$config" "provenant-trainer $method $compute" "$rate" "$(peak_rss_mib "$work/time")"
		[[ "$method" == lora && "$rate" -gt "$ours" ]] && ours=$rate
		# The adapter must work outside this project: PEFT loads it, and transformers loads the
		# `merge` output, with the same logits. (The GGUF base has no HF directory for PEFT.)
		if [[ "$run" == lora:f32 && "$config" != smollm2 ]]; then
			"$trainer" merge --model "$model" --adapter "$out" --output "$work/merged-$config" >/dev/null
			if ! check=$("$py" scripts/bench_trainer.py peft-check "$model" "$out" "$work/merged-$config" 2>"$work/peft.err"); then
				tail -n 5 "$work/peft.err" >&2
				exit 1
			fi
			printf '%-12s %-22s %s\n' "$config" "PEFT load check" "$check"
		fi
	done
	theirs=0
	for compute in f32 bf16 f16; do
		/usr/bin/time -v -o "$work/time" "$py" scripts/bench_trainer.py torch "$config" "$dir" "$steps" "$compute" > "$work/torch.json"
		rate=$("$py" -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["tokens_per_s"]))' "$work/torch.json")
		printf '%-12s %-22s %12s %14s\n' "$config" "pytorch+peft lora $compute" "$rate" "$(peak_rss_mib "$work/time")"
		[[ "$rate" -gt "$theirs" ]] && theirs=$rate
	done
	printf '%-12s %-22s %12s\n' "$config" "best ours / best theirs" "$("$py" -c "print(f'{$ours / $theirs:.2f}x')")"
done
