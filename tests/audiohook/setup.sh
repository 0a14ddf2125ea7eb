#!/usr/bin/env bash
# Lay out the vendored AudioHook reference client and conformance suite in DEST with what they need
# installed from this folder's package-lock.json (`npm ci`: exactly the locked versions, nothing newer).
# Run once by `make` (the set-up of `make test`), never by a test. The vendored tree is read-only and
# its own package.json files also pull the AWS deployment kit, so the sources are copied beside this
# folder's package.json instead. Usage: setup.sh SOURCE_DIR DEST (SOURCE_DIR: tests/audiohook/reference)
set -euo pipefail
dest=$2
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$1/client" ]; then
    echo "note: no AudioHook reference implementation in $1: its tests will skip" >&2
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "note: npm not found: the AudioHook reference-client tests will skip (install nodejs and npm)" >&2
    exit 0
fi
vendor=$(cd "$1" && pwd)
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp/app" "$dest.tmp/client" "$dest.tmp/test"
cp -R "$vendor/app/audiohook" "$dest.tmp/app/audiohook"
cp -R "$vendor/client/src" "$vendor/client/tsconfig.json" "$dest.tmp/client/"
cp -R "$vendor/test/." "$dest.tmp/test/"
rm -f "$dest.tmp/test/audiohook-fargate-api.test.ts"  # the AWS stack's test, not the protocol's
cp "$vendor/jest.config.js" "$vendor/tsconfig.json" "$vendor/LICENSE" "$dest.tmp/"
cp "$here/package.json" "$here/package-lock.json" "$dest.tmp/"
chmod -R u+w "$dest.tmp"
(cd "$dest.tmp" && npm ci --no-audit --no-fund --loglevel=error)
ln -s ../node_modules "$dest.tmp/client/node_modules"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
