#!/usr/bin/env bash
# The example project built in process and on a Ballista cluster on this machine: one
# scheduler and two executors (each one task slot, pinned to one core when taskset exists),
# all `strata` processes over the same local lake. Prints both wall times, the tasks each
# executor ran, and where the cluster build's time went: inside the cluster's jobs (planning
# of stages, scans, shuffles, the executors writing the models' Parquet files) and in the
# client (planning, the Delta commits, the MERGE of keyed incremental models).
#
# On one machine the cluster cannot be faster: the point is that it works and what it costs.
#
# Usage: bench/cluster.sh [SCALE (orders, default 1000000)] [BATCHES (default 3)]
# Environment:
#   STRATA            strata binary to use (default: cargo build --release, as the other benches)
#   CLUSTER_BENCH_DIR work directory (default: a fresh temporary directory, removed at the end)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scale="${1:-1000000}"
batches="${2:-3}"

if [ -n "${STRATA:-}" ]; then
  strata="$STRATA"
else
  . "$repo/scripts/env.sh"
  (cd "$repo" && cargo build --release --quiet --bin strata)
  strata="$CARGO_TARGET_DIR/release/strata"
fi

if [ -n "${CLUSTER_BENCH_DIR:-}" ]; then
  work="$CLUSTER_BENCH_DIR"
  rm -rf "$work/project" "$work/lake" "$work/executors"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
fi
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${CLUSTER_BENCH_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pin() { if command -v taskset >/dev/null; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }

project="$work/project"
mkdir -p "$project"
cp -R "$repo/catalog" "$repo/dbt_project.yml" "$repo/models" "$repo/macros" "$repo/seeds" "$project/"
[ -d "$repo/data-tests" ] && cp -R "$repo/data-tests" "$project/"
printf '[lake]\nroot = "%s"\n' "$work/lake" >"$project/strata.toml"
cd "$project"

echo "== generate and land: $scale orders, $batches batches"
"$strata" generate --out drop --scale "$scale" --batches "$batches" >/dev/null
"$strata" land >/dev/null

echo "== in process: strata build"
start=$(now)
"$strata" build >"$work/local.log"
local_time=$(elapsed "$start" "$(now)")
grep "^Finished" "$work/local.log"

echo "== cluster: scheduler + 2 executors (1 task slot each)"
"$strata" scheduler --port 0 --status-port 0 >"$work/scheduler.out" 2>"$work/scheduler.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening" "$work/scheduler.out" 2>/dev/null && break; sleep 0.1; done
scheduler=$(grep -o 'df://[0-9.:]*' "$work/scheduler.out")
status=$(grep -o 'http://[0-9.:]*' "$work/scheduler.out")
cores=$(nproc)
for n in 0 1; do
  pin $((n % cores)) "$strata" executor --cluster "$scheduler" --port "$(free_port)" \
    --grpc-port "$(free_port)" --work-dir "$work/executors/$n" --concurrent-tasks 1 \
    >"$work/executor-$n.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  [ "$("$strata" cluster status --status "$status" | head -1 | cut -d' ' -f1)" = 2 ] && break
  sleep 0.2
done
printf '\n[cluster]\nscheduler = "%s"\nstatus = "%s"\n' "$scheduler" "$status" >>strata.toml

echo "== cluster: strata build --full-refresh"
start_ms=$(date +%s%3N)
start=$(now)
"$strata" build --full-refresh >"$work/cluster.log"
cluster_time=$(elapsed "$start" "$(now)")
grep -E "^Finished|job\(s\) on the cluster" "$work/cluster.log"

in_jobs=$(curl -s "$status/status" | python3 -c "
import json, sys
jobs = [j for j in json.load(sys.stdin)['jobs'] if j['started_ms'] >= $start_ms]
print('%.2f' % (sum(max(j['ended_ms'] - j['started_ms'], 0) for j in jobs) / 1000))")

echo
echo "in process         ${local_time} s"
echo "on the cluster     ${cluster_time} s ($(awk -v a="$cluster_time" -v b="$local_time" 'BEGIN { printf "%.2f", a / b }')x)"
echo "  in cluster jobs  ${in_jobs} s (sum of the jobs' wall times: stage planning, scans, shuffles,"
echo "                   the executors writing the models' Parquet files)"
echo "  outside jobs     $(awk -v a="$cluster_time" -v b="$in_jobs" 'BEGIN { printf "%.2f", a - b }') s (planning, Delta commits, keyed MERGEs, tests' local work, start-up)"
