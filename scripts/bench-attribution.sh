#!/usr/bin/env bash
# Attribution fidelity on a generated datanet where the truth is known, and attribution's cost:
# fine-tunes SmolLM2-135M on a few hundred documents with planted facts (verbatim and
# paraphrased) and decoys, plainly and with training-time attribution, then reports
# Recall@1/5/10 and MRR of each fact's true source for TracIn, DataInf, spans, BM25 and their
# fusions, and the attributed run's wall time against the plain one's.
#
# Usage: scripts/bench-attribution.sh [--facts N] [--epochs N] [--json FILE] ...
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/fetch-models.sh >&2
cargo build --release --locked --workspace --examples >&2
"$CARGO_TARGET_DIR/release/examples/attribution_bench" --model "$PROVENANT_SMOLLM2_GGUF" "$@"
