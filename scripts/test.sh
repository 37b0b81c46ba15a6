#!/usr/bin/env bash
# README command (b): sets up the machine if needed, builds the release binaries once, then
# runs every test (unit, runtime and end-to-end) against that same release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

# One release build serves both the binaries the end-to-end tests start and the test
# harnesses: `cargo test --release` reuses every compiled dependency.
cargo build --release --workspace --locked
cargo test --release --workspace --locked "$@"
