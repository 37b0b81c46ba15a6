#!/usr/bin/env bash
# Regenerates client/metadata/provenant.scale from the runtime, after a runtime change.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PROVENANT_UPDATE_METADATA=1 cargo test --release --workspace --lib metadata_file_is_current
echo "updated client/metadata/provenant.scale"
