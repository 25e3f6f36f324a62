#!/usr/bin/env bash
# Two builds of ward side by side under the same FHIR load: each round runs
# both on SQLite, alternating which goes first, so the machine's drift
# (a shared VM) falls on both alike. Prints per-scenario medians and the
# ratio B/A. Used for issue 25 (FHIR ids in v4 form against the v7 ids
# before it), and for any change whose cost must be shown against its parent.
#
#   bash bench/fhirload/ab.sh                      # A=f7986fc (v7 ids) B=f5cf065 (v4 form)
#   A=HEAD~1 B=HEAD ROUNDS=5 DURATION=8s bash bench/fhirload/ab.sh
#
# Environment: A, B (commits), ROUNDS (default 4), DURATION (8s), WARMUP
# (2s), CLIENTS (32), PATIENTS (1000), SCENARIOS (read,search-obs,
# search-name,create), OUT (results directory).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
A=${A:-f7986fc}
B=${B:-f5cf065}
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
CLIENTS=${CLIENTS:-32}
PATIENTS=${PATIENTS:-1000}
SCENARIOS=${SCENARIOS:-read,search-obs,search-name,create}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/fhirload-ab.XXXXXX")}
mkdir -p "$OUT/bin"

build() { # commit name
  local src="$OUT/src-$2"
  git -C "$root" worktree add -q --detach "$src" "$1"
  (cd "$src" && go build -o "$OUT/bin/ward-$2" ./cmd/ward)
  git -C "$root" worktree remove --force "$src"
}
echo "== build A=$A B=$B and the load generator" >&2
build "$A" a
build "$B" b
(cd "$root/bench" && go build -o "$OUT/bin/fhirload" ./fhirload)

echo "== machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'); before: $(uptime)" >&2
for i in $(seq 1 "$ROUNDS"); do
  order="a b"
  [ $((i % 2)) -eq 0 ] && order="b a"
  for v in $order; do
    echo "== round $i: $v" >&2
    "$OUT/bin/fhirload" -repo "$root" -ward "$OUT/bin/ward-$v" -targets ward-sqlite -scenarios "$SCENARIOS" \
      -clients "$CLIENTS" -duration "$DURATION" -warmup "$WARMUP" -patients "$PATIENTS" -durability=false \
      -out "$OUT/r$i-$v" >/dev/null
  done
done
echo "== after: $(uptime)" >&2

# Medians over the rounds, per scenario: rate and p99 of A and B, B/A.
node - "$OUT" "$ROUNDS" "$A" "$B" <<'EOF'
const fs = require('fs');
const [dir, rounds, A, B] = process.argv.slice(2);
const runs = { a: {}, b: {} };
for (let i = 1; i <= +rounds; i++) for (const v of ['a', 'b']) {
  const r = JSON.parse(fs.readFileSync(`${dir}/r${i}-${v}/results.json`, 'utf8'));
  for (const x of r.runs) (runs[v][x.scenario] ??= []).push(x);
}
const med = (xs) => { const s = [...xs].sort((p, q) => p - q); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
console.log(`A = ${A}, B = ${B}; medians of ${rounds} alternating rounds per build\n`);
console.log('| scenario | A req/s | B req/s | B/A rate | A p99 ms | B p99 ms | B/A p99 | A rates | B rates |');
console.log('|---|---:|---:|---:|---:|---:|---:|---|---|');
for (const sc of Object.keys(runs.a)) {
  const ra = runs.a[sc].map((x) => x.perSecond), rb = runs.b[sc].map((x) => x.perSecond);
  const pa = med(runs.a[sc].map((x) => x.p99Ms)), pb = med(runs.b[sc].map((x) => x.p99Ms));
  console.log(`| ${sc} | ${med(ra).toFixed(0)} | ${med(rb).toFixed(0)} | ${(med(rb) / med(ra)).toFixed(3)} | ${pa.toFixed(1)} | ${pb.toFixed(1)} | ${(pb / pa).toFixed(3)} | ${ra.map((x) => x.toFixed(0)).join(' ')} | ${rb.map((x) => x.toFixed(0)).join(' ')} |`);
}
EOF
echo "results: $OUT" >&2
