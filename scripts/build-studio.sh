#!/usr/bin/env bash
# Builds Studio's production bundle into studio/dist: installs its locked npm packages when the
# lockfile changed, regenerates the chain's types from client/metadata/provenant.scale, checks
# the TypeScript against them (a runtime change that breaks Studio fails here), and bundles.
set -euo pipefail
cd "$(dirname "$0")/../studio"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build >/dev/null
echo "studio: built studio/dist"
