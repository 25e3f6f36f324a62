#!/usr/bin/env bash
# Builds livekit-server (TestTelemedLiveKit) from the Go module proxy and
# prints its path. The first build takes about 9 minutes on this machine
# (2 cores, cold module cache); later runs reuse .cache/ (git-ignored).
# Pinned to v1.13.5: later releases (v1.13.6+ at least up to v1.13.11) replace
# pion modules with LiveKit forks that the proxy does not serve ("403 This
# module version is not available"), so `go install` cannot build them.
# Safe to run concurrently (flock).
set -euo pipefail
version=v1.13.5
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/.cache"
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
bin="$cache/livekit-server-$version"
if [ ! -x "$bin" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/livekit/livekit-server/cmd/server@$version" >&2
  mv "$tmp/server" "$bin"
fi
echo "$bin"
