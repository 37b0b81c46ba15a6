#!/usr/bin/env bash
# README command (b): sets up the machine if needed, builds the release binaries once, then
# runs every test (unit, runtime and end-to-end) against that same release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
scripts/fetch-models.sh

# The workspace's rustfmt.toml is the one layout: an unformatted tree fails here.
if ! cargo fmt --all --check >/dev/null; then
	echo "test.sh: the tree is not formatted as rustfmt.toml says; run \`cargo fmt --all\`" >&2
	exit 1
fi

# Lints, over every target, as warnings that fail. Release profile, so build scripts and
# proc-macros are the ones the build below uses.
cargo clippy --release --workspace --all-targets --locked -- -D warnings

# The runtime with `try-runtime`, whose API runs every pallet's invariants against a live
# chain's state, keeps compiling. A check, not a build: no wasm, nothing to run here.
SKIP_WASM_BUILD=1 cargo check --release -p provenant-runtime --features try-runtime --locked

# Studio's production build, which its browser tests (tests/tests/studio) load from the server.
scripts/build-studio.sh

# One release build serves both the binaries the end-to-end tests start and the test
# harnesses: `cargo test --release` reuses every compiled dependency.
cargo build --release --workspace --locked

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --locked "$@" 2>&1 | tee "$log" || status=$?

# cargo prints one result line per test binary, the last often a doc-test run of none;
# close with the totals over all of them.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "summary: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
