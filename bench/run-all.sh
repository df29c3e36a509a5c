#!/usr/bin/env bash
# The whole issue 9 measurement, as run for docs/PERFORMANCE.md: side by side at 10k (2 rounds), FHIR at
# c=1, then 100k and 1M (our server restarted on each database; Parse Server stays at 10k), then ingest on
# a copy of the 10k database (it adds records), then 60 s c=1 runs of read and search at 10k and 1M.
# Needs what bench/README.md sets up once (Parse peer running, phr_bench* databases, manifests).
#   [BENCH_TAG=s5] bench/run-all.sh [results.jsonl]      (labels 10k-s5-final, ... with a tag)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE/.."; . bench/env.sh
J=${1:-/work/bench-run/results.jsonl}
PY=.venv/bin/python
T=${BENCH_TAG:+-$BENCH_TAG}
run() { echo "== $* ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"; "$@"; }
serve_on() { bench/serve.sh stop; BENCH_DB=$1 bench/serve.sh start; }

serve_on phr_bench
run $PY bench/compare.py -d 8 -c 8 --rounds 2 --label "10k$T-final" --json "$J"
run $PY bench/compare.py -d 8 -c 1 --only fhir --label "10k$T-c1" --json "$J"
run $PY bench/compare.py -d 8 -c 1 --only native --scenarios native-get,native-query --label "10k$T-c1" --json "$J"
run wrk -t1 -c8 -d8s --latency "$PHR_BASE_URL/healthz"      # the framework floor (compare CPU by hand)
for size in 100k 1m; do
  serve_on "phr_bench_$size"
  run $PY bench/compare.py -d 8 -c 8 --warmup 5 --label "$size$T-final" --json "$J"
  run $PY bench/compare.py -d 8 -c 1 --only fhir --label "$size$T-c1" --json "$J"
  run $PY bench/compare.py -d 8 -c 1 --only native --scenarios native-get,native-query --label "$size$T-c1" --json "$J"
done
bench/serve.sh stop
createdb -h 127.0.0.1 -U postgres -T phr_bench phr_bench_ingest
BENCH_DB=phr_bench_ingest bench/serve.sh start
for threads in 2 4; do run $PY bench/generate.py --via fhir --records 10000 --threads $threads; done
bench/serve.sh stop; dropdb -h 127.0.0.1 -U postgres phr_bench_ingest
# The flatness target (p99 at 1M within 1.3x of 10k) at c=1: 60 s per run, sizes interleaved. An 8 s run holds
# ~200 requests in its slowest 1 %, and on a shared VM that p99 moves 0.7-2.5 ms from run to run.
for r in 1 2; do
  for size in 10k 1m; do
    if [ $size = 10k ]; then serve_on phr_bench; else serve_on phr_bench_$size; fi
    run $PY bench/compare.py -d 60 -c 1 --only fhir --scenarios fhir-read,fhir-search --label "$size$T-c1-long-r$r" --json "$J"
  done
done
serve_on phr_bench
