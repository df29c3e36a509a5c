# Source me: the environment every bench/ script and the gateway under test share.
# Our gateway runs from /work/bench-run (instance folder outside the repo) against its own database.
export BENCH_DB=${BENCH_DB:-phr_bench}
# Always follows BENCH_DB (a DATABASE_URL exported by an earlier `. env.sh` must not pin the old one).
export DATABASE_URL=${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/$BENCH_DB}
export PHR_INSTANCE_PATH=${PHR_INSTANCE_PATH:-/work/bench-run/instance}
export PHR_MASTER_KEY=${PHR_MASTER_KEY:-benchMasterKey}
export PHR_PORT=${PHR_PORT:-8090}
export PHR_BASE_URL=${PHR_BASE_URL:-http://127.0.0.1:$PHR_PORT}
export PHR_WORKERS=${PHR_WORKERS:-2}
export PHR_THREADS=${PHR_THREADS:-8}
export PARSE_URL=${PARSE_URL:-http://127.0.0.1:1337/parse}
export PARSE_PEER=${PARSE_PEER:-/work/parse-peer}
