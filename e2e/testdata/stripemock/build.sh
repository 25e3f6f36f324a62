#!/usr/bin/env bash
# Builds stripe-mock (TestPaymentsWithSDK) from the Go module proxy and
# prints its path. About 10 s with a warm module cache; later runs reuse
# .cache/ (git-ignored). stripe-mock embeds Stripe's OpenAPI spec and
# fixtures: it validates requests as Stripe's API does and answers with
# fixtures (stateless: nothing created is kept).
# Safe to run concurrently (flock).
set -euo pipefail
version=v0.203.0
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/.cache"
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
bin="$cache/stripe-mock-$version"
if [ ! -x "$bin" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/stripe/stripe-mock@$version" >&2
  mv "$tmp/stripe-mock" "$bin"
fi
echo "$bin"
