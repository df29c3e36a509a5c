#!/usr/bin/env bash
# Ingest A/B: two (or more) versions of the gateway, alternating, each run on a fresh copy of a database.
#   bench/ab_ingest.sh before:/tmp/wt-before after:.       (ROUNDS=2 RECORDS=20000 THREADS=4 BASE_DB=phr_bench)
# A variant is label:source[:venv], source a checkout of this repository (`git worktree add /tmp/wt-before
# <rev>`) or `.` for this one; its code is served by this checkout's venv (or `venv`: another interpreter's,
# with this checkout installed) with PYTHONPATH set to the source. Each run
# copies BASE_DB (our server stopped: a template must have no connections), migrates it as `serve` does,
# ingests 2,000 records to warm the workers up, then times RECORDS with THREADS clients (generate.py --via
# fhir). One JSON line per run, labelled, on stdout. BASE_DB must be at a migration every variant knows: keep
# a copy made before migrating to the newer code (`CREATE DATABASE phr_bench_base TEMPLATE phr_bench`).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE/.."; . bench/env.sh
ROUNDS=${ROUNDS:-2}; RECORDS=${RECORDS:-20000}; THREADS=${THREADS:-4}; BASE_DB=${BASE_DB:-phr_bench}
DB=phr_bench_ab
for r in $(seq 1 "$ROUNDS"); do
  for variant in "$@"; do
    IFS=: read -r label source venv <<< "$variant"
    [ "$source" = . ] && source=""
    bench/serve.sh stop
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB TEMPLATE $BASE_DB"
    VENV=${venv:-$PWD/.venv} PYTHONPATH=$source BENCH_DB=$DB bench/serve.sh start > /dev/null
    BENCH_DB=$DB .venv/bin/python bench/generate.py --via fhir --records 2000 --threads "$THREADS" > /dev/null 2>&1
    out=$(BENCH_DB=$DB .venv/bin/python bench/generate.py --via fhir --records "$RECORDS" --threads "$THREADS" 2>/dev/null | tail -1)
    echo "{\"label\": \"$label\", \"round\": $r, \"workers\": $PHR_WORKERS, \"worker_threads\": $PHR_THREADS, ${out#\{}"
  done
done
bench/serve.sh stop
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB"
