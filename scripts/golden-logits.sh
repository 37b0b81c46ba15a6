#!/usr/bin/env bash
# Regenerates trainer/tests/golden/{gpt2,bloom,deepseek_v2,deepseek_v3}.json: the logits
# Hugging Face transformers computes for the trainer tests' tiny checkpoints of those families,
# and for DeepSeek also with a trainer-written adapter loaded by PEFT. The test
# `golden_families_match_transformers` compares the trainer's forward pass against them.
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
	# DeepSeek's routing and rotary layout changed between transformers releases (docs/deepseek.md).
	"$venv/bin/pip" install --quiet torch transformers==5.24.0 peft==0.21.2
fi
PROVENANT_GOLDEN_DIR="$work/checkpoints" cargo test --release --workspace --locked --test families \
	-- --ignored --exact write_golden_checkpoints
"$venv/bin/python" scripts/golden_logits.py "$work/checkpoints" trainer/tests/golden
