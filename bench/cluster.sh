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

. "$repo/scripts/env.sh"
strata="$(release_strata)"

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
# Each Delta write logs how long its files, their pooling and its commit took (milliseconds).
write_log="warn,deltalake_core=error,strata::lake::write=debug"
# Seconds summed over the write log's `NAME=ms` fields.
write_secs() { { grep -o "$2=[0-9]*" "$1" || true; } | awk -F= '{ s += $2 } END { printf "%.2f", s / 1000 }'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pin() { if command -v taskset >/dev/null; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }

project="$work/project"
mkdir -p "$project"
copy_example_project "$project"
printf '[lake]\nroot = "%s"\n' "$work/lake" >"$project/strata.toml"
cd "$project"

echo "== generate and land: $scale orders, $batches batches"
"$strata" generate --out drop --scale "$scale" --batches "$batches" >/dev/null
"$strata" land >/dev/null

echo "== in process: strata build"
start=$(now)
STRATA_LOG="$write_log" "$strata" build >"$work/local.log" 2>"$work/local.err"
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
STRATA_LOG="$write_log" "$strata" build --full-refresh >"$work/cluster.log" 2>"$work/cluster.err"
cluster_time=$(elapsed "$start" "$(now)")
grep -E "^Finished|job\(s\) on the cluster" "$work/cluster.log"

read -r in_jobs waiting shuffle_stages shuffle_write writing results < <(curl -s "$status/status" | python3 -c "
import json, sys
jobs = [j for j in json.load(sys.stdin)['jobs'] if j['started_ms'] >= $start_ms]
wall = sum(max(j['ended_ms'] - j['started_ms'], 0) for j in jobs)
work = lambda k: sum(j['work'][k] for j in jobs)
print(' '.join('%.2f' % (ms / 1000) for ms in [wall] + [work(k) for k in
      ['waiting_ms', 'shuffle_stages_ms', 'shuffle_write_ms', 'write_ms', 'result_ms']]))")

breakdown() {
  local log="$1" total="$2" queries pool commit
  queries=$(write_secs "$log" write_ms)
  pool=$(write_secs "$log" pool_ms)
  commit=$(write_secs "$log" commit_ms)
  echo "  writes' queries ${queries} s (running each model's query and writing its files)"
  echo "  pooling files   ${pool} s, Delta commits ${commit} s"
  echo "  the rest        $(awk -v t="$total" -v a="$queries" -v b="$pool" -v c="$commit" 'BEGIN { printf "%.2f", t - a - b - c }') s (planning, tests, keyed MERGEs, start-up)"
}

echo
echo "in process         ${local_time} s"
breakdown "$work/local.err" "$local_time"
echo "on the cluster     ${cluster_time} s ($(awk -v a="$cluster_time" -v b="$local_time" 'BEGIN { printf "%.2f", a / b }')x)"
breakdown "$work/cluster.err" "$cluster_time"
echo "  in cluster jobs  ${in_jobs} s of wall time; task-seconds (tasks run side by side):"
echo "    waiting for a slot ${waiting} s, stages feeding shuffles ${shuffle_stages} s (of which writing"
echo "    shuffle files ${shuffle_write} s), writing models' files ${writing} s, query results ${results} s"
echo "tasks per executor: $(grep -o 'job(s) on the cluster: .*' "$work/cluster.log" | tail -1)"
