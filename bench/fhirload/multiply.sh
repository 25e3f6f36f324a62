#!/usr/bin/env bash
# Multiplies a ward-sqlite directory kept by `fhirload -keep` into one with
# FACTOR times its FHIR resources, for `fhirload -from` at sizes that would
# take hours to load over HTTP (100,000 patients: ~1.8M resources). Copy k
# (1..FACTOR-1) is the original with every id's leading hex digit set to k:
# ids are v7 UUIDs made within minutes, so they share a prefix that occurs
# nowhere else (the script checks), and replacing it in every text column
# rewrites ids, references and index rows alike. Each family name then
# matches FACTOR times the patients, as in a data set that many times larger.
# History rows are not copied (no scenario reads them).
#
#   bash bench/fhirload/multiply.sh /tmp/kept-10k /tmp/kept-100k 10
#   go run ./fhirload -targets ward-sqlite -patients 100000 -from /tmp/kept-100k
set -euo pipefail
src=$1 dst=$2 factor=${3:-10}
db=$dst/data/ward.db
[ ! -e "$dst" ] || { echo "$dst exists" >&2; exit 2; }
[ "$factor" -ge 2 ] && [ "$factor" -le 10 ] || { echo "FACTOR must be 2..10" >&2; exit 2; }
mkdir -p "$dst"
cp -a "$src/data" "$dst/data"
prefix=$(sqlite3 "$db" "SELECT substr(MIN(id), 1, 6) FROM fhir_resources")
[ "${prefix:0:1}" = 0 ] || { echo "ids do not start with 0 ($prefix)" >&2; exit 1; }
check=$(sqlite3 "$db" "SELECT COUNT(*) FROM fhir_resources WHERE id NOT LIKE '$prefix%'
  OR (length(content) - length(replace(content, '$prefix', ''))) / 6 <>
     (length(content) - length(replace(content, '\"id\":\"$prefix', ''))) / 12 + (length(content) - length(replace(content, '/$prefix', ''))) / 7")
[ "$check" = 0 ] || { echo "$check resources have ids without the prefix $prefix or the prefix elsewhere" >&2; exit 1; }
tables="fhir_resources fhir_idx_token fhir_idx_string fhir_idx_reference fhir_idx_date fhir_idx_number fhir_idx_uri fhir_idx_composite"
{
  echo "PRAGMA synchronous=OFF;"
  for k in $(seq 1 $((factor - 1))); do
    echo "BEGIN;"
    for t in $tables; do
      cols=$(sqlite3 "$db" "SELECT group_concat(CASE WHEN upper(type) = 'TEXT' AND name <> 'project_id'
        THEN 'replace(' || name || ', ''$prefix'', ''$k${prefix:1}'')' ELSE name END, ', ') FROM pragma_table_info('$t')")
      echo "INSERT INTO $t SELECT $cols FROM $t WHERE id LIKE '$prefix%';"
    done
    echo "COMMIT;"
    echo "SELECT 'copy $k of $((factor - 1))', datetime('now');"
  done
  echo "PRAGMA wal_checkpoint(TRUNCATE);"
} | sqlite3 "$db"
# The patients' ids, copy after copy, as fhirload -keep wrote them.
node -e '
const fs = require("fs");
const [src, dst, factor, prefix] = process.argv.slice(1);
const ids = JSON.parse(fs.readFileSync(src + "/patient-ids.json", "utf8"));
const out = [];
for (let k = 0; k < +factor; k++) for (const id of ids) out.push(k ? String(k) + id.slice(1) : id);
fs.writeFileSync(dst + "/patient-ids.json", JSON.stringify(out));
' "$src" "$dst" "$factor" "$prefix"
echo "$dst: $(sqlite3 "$db" "SELECT COUNT(*) FROM fhir_resources") resources" >&2
