#!/usr/bin/env bash
# Builds the web console (web/ -> web/dist/): installs its npm packages exactly as locked when
# they are missing or older than the lock file, type-checks and bundles with Vite.
set -euo pipefail
cd "$(dirname "$0")/../web"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc -p .
npx --no-install vite build --logLevel warn
