#!/usr/bin/env bash
# Regenerates trainer/tests/golden/{gpt2,bloom}.json: the logits Hugging Face transformers
# computes for the trainer tests' tiny GPT-2 and BLOOM checkpoints. The test
# `gpt2_and_bloom_match_transformers` compares the trainer's forward pass against them.
# Run it when the test checkpoints change; transformers and torch go into a throwaway venv
# (or the one named by $PROVENANT_TORCH_VENV).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="${PROVENANT_TORCH_VENV:-$work/venv}"
if [[ ! -x "$venv/bin/python" ]]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet torch transformers
fi
PROVENANT_GOLDEN_DIR="$work/checkpoints" cargo test --release --workspace --locked --test families \
	-- --ignored --exact write_golden_checkpoints
"$venv/bin/python" scripts/golden_logits.py "$work/checkpoints" trainer/tests/golden
