#!/usr/bin/env bash
# The FHIR HTTP benchmark end to end: installs the Medplum peer (npm ci),
# builds ward and the load generator, runs every target one after the other
# (bare net/http, ward on SQLite, ward on PostgreSQL, Medplum's router) with
# the same data and load, REPEAT times per scenario (the tables keep the
# fastest run and show the slowest: the machine may be shared), prints the
# markdown tables (with the Ward / peer ratios), then, unless PROFILE=0, runs read and create again on ward with
# CPU profiles (a separate pass, so profiling does not touch the figures).
#
#   bash bench/fhirload/run.sh                       # 32 clients, 3 x (2s + 10s) per scenario
#   bash bench/fhirload/run.sh --duration 30s --clients 64
#   DURATION=5s TARGETS=bare,ward-sqlite PROFILE=0 bash bench/fhirload/run.sh
#
# Environment (or the flags after it): DURATION (--duration), WARMUP
# (--warmup), CLIENTS (--clients), REPEAT (--repeat, default 3), PATIENTS (--patients), TARGETS
# (--targets), OUT (--out: where results.{md,json} and profiles go),
# PROFILE=0 (--no-profile), POSTGRES (--postgres: the server's URL).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CLIENTS=${CLIENTS:-32}
REPEAT=${REPEAT:-3}
PATIENTS=${PATIENTS:-1000}
TARGETS=${TARGETS:-bare,ward-sqlite,ward-postgres,medplum}
PROFILE=${PROFILE:-1}
POSTGRES=${POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
OUT=${OUT:-}

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --patients) PATIENTS=$2; shift 2 ;;
    --targets) TARGETS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --postgres) POSTGRES=$2; shift 2 ;;
    --no-profile) PROFILE=0; shift ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ -n "$OUT" ] || OUT=$(mktemp -d "${TMPDIR:-/tmp}/fhirload.XXXXXX")
mkdir -p "$OUT/bin"

if [[ $TARGETS == *medplum* ]]; then
  echo "== npm ci (bench/medplum)" >&2
  (cd "$root/bench/medplum" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

echo "== build" >&2
(cd "$root" && go build -o "$OUT/bin/ward" ./cmd/ward)
(cd "$root/bench" && go build -o "$OUT/bin/fhirload" ./fhirload)

echo "== machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'); before: $(uptime)" >&2
"$OUT/bin/fhirload" -repo "$root" -ward "$OUT/bin/ward" -postgres "$POSTGRES" \
  -targets "$TARGETS" -clients "$CLIENTS" -repeat "$REPEAT" -duration "$DURATION" -warmup "$WARMUP" -patients "$PATIENTS" \
  -out "$OUT" >"$OUT/table.md"
echo "== after: $(uptime)" >&2

if [ "$PROFILE" != 0 ]; then
  wards=$(echo "$TARGETS" | tr ',' '\n' | grep '^ward' | paste -sd, - || true)
  if [ -n "$wards" ]; then
    echo "== profiling pass ($wards: read, create)" >&2
    "$OUT/bin/fhirload" -repo "$root" -ward "$OUT/bin/ward" -postgres "$POSTGRES" \
      -targets "$wards" -scenarios read,create -clients "$CLIENTS" -duration "$DURATION" -warmup "$WARMUP" \
      -patients "$PATIENTS" -durability=false -profile "$OUT/profiles" -out "$OUT/profile-run" >/dev/null
    for f in "$OUT"/profiles/*.top.txt; do
      echo "-- $(basename "$f" .top.txt): top CPU consumers" >&2
      sed -n '5p;9,24p' "$f" >&2
    done
  fi
fi

cat "$OUT/table.md"
echo "results: $OUT/results.md and $OUT/results.json" >&2
[ "$PROFILE" = 0 ] || echo "profiles: $OUT/profiles (go tool pprof -top FILE)" >&2
