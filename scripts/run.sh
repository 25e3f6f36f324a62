#!/usr/bin/env bash
# Builds ward into bin/ and runs it with the given arguments, e.g.
# `scripts/run.sh serve`. It says what it is doing: the first build
# compiles SQLite (pure Go) and takes a couple of minutes with no other
# output; later builds take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x bin/ward ]; then
  echo "building ward..." >&2
else
  echo "building ward (the first build compiles SQLite and takes a couple of minutes)..." >&2
fi
start=$(date +%s)
go build -o bin/ward ./cmd/ward
echo "built bin/ward in $(( $(date +%s) - start ))s; running: bin/ward $*" >&2
exec bin/ward "$@"
