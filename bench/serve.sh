#!/usr/bin/env bash
# `strata serve` under pgbench, next to the machine's PostgreSQL holding the same rows, in one
# run on one machine:
#   1. the shop project is generated (--scale orders), landed and built into a fresh lake;
#   2. gold.fct_orders is copied into PostgreSQL (database strata_bench, with its primary key);
#   3. pgbench runs two custom scripts against both: a point lookup by order_id and a small
#      aggregate (GROUP BY status over a range of customers), at 1, 32 and 64 clients,
#      printing TPS, latency p50/p99, failed transactions and the Strata/PostgreSQL ratios;
#   4. a fresh server streams a STREAM_ROWS-row result to psql (plain SELECT and COPY TO
#      STDOUT) while its peak RSS (/proc/<pid>/status VmHWM) is sampled: memory stays bounded
#      by batches, not by the size of the result.
#
# Usage: bench/serve.sh [SCALE (orders, default 100000)] [SECONDS per pgbench run (default 15)]
# Environment:
#   STRATA         strata binary (default: cargo build --release, as the other benches)
#   PG             libpq connection string of the PostgreSQL to compare with, without dbname
#                  (default "host=127.0.0.1 port=5432"; scripts/test starts one with trust)
#   CLIENTS        client counts (default "1 32 64")
#   PGBENCH_MODE   pgbench query protocol: simple | extended | prepared (default simple)
#   STREAM_ROWS    rows of the streamed result (default 1000000)
#   SERVE_BENCH_DIR  work directory (default: a temporary directory, removed at the end)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scale="${1:-100000}"
seconds="${2:-15}"
clients="${CLIENTS:-1 32 64}"
mode="${PGBENCH_MODE:-simple}"
stream_rows="${STREAM_ROWS:-1000000}"
pg="${PG:-host=127.0.0.1 port=5432}"

. "$repo/scripts/env.sh"
strata="$(release_strata)"
pgbench="$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -1)"
for tool in psql "$pgbench"; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/test" >&2; exit 1; }
done

if [ -n "${SERVE_BENCH_DIR:-}" ]; then
  work="$SERVE_BENCH_DIR"
  rm -rf "$work/project" "$work/lake" "$work/pgbench"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
fi
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -z "${SERVE_BENCH_DIR:-}" ] && rm -rf "$work"
  return 0
}
trap cleanup EXIT

# -- 1. the lake -----------------------------------------------------------------------------
project="$work/project"
mkdir -p "$project"
copy_example_project "$project"
printf '[lake]\nroot = "%s"\n\n[land]\nsources = "catalog/sources.yml"\n' "$work/lake" >"$project/strata.toml"
sql() { "$strata" --project-dir "$project" sql --format csv -c "$1" | tail -n +2; }

echo "== building the shop lake: $scale orders"
"$strata" --project-dir "$project" generate --out "$project/drop" --scale "$scale" --batches 2 >/dev/null
(cd "$project" && "$strata" --project-dir . land >/dev/null)
(cd "$project" && "$strata" --project-dir . build >"$work/build.log" 2>&1) || {
  echo "strata build failed: $work/build.log" >&2; tail -20 "$work/build.log" >&2; exit 1; }
orders="$(sql "SELECT count(*) FROM gold.fct_orders")"
max_id="$(sql "SELECT max(order_id) FROM gold.fct_orders")"
max_customer="$(sql "SELECT max(customer_id) FROM gold.fct_orders")"
echo "gold.fct_orders: $orders rows, order_id up to $max_id, customer_id up to $max_customer"

# -- 2. the same rows in PostgreSQL ----------------------------------------------------------
columns="order_id, customer_id, order_date, status, amount"
"$strata" --project-dir "$project" sql --format csv -c "SELECT $columns FROM gold.fct_orders" >"$work/fct_orders.csv"
psql -X -q -d "$pg dbname=postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = 'strata_bench'" | grep -q 1 \
  || psql -X -q -d "$pg dbname=postgres" -c "CREATE DATABASE strata_bench"
psql -X -q -v ON_ERROR_STOP=1 -d "$pg dbname=strata_bench" <<SQL
DROP SCHEMA IF EXISTS gold CASCADE;
CREATE SCHEMA gold;
CREATE TABLE gold.fct_orders (order_id bigint PRIMARY KEY, customer_id bigint, order_date date,
  status text, amount numeric(12, 2));
\copy gold.fct_orders FROM '$work/fct_orders.csv' CSV HEADER
ANALYZE gold.fct_orders;
SQL
pg_orders="$(psql -X -d "$pg dbname=strata_bench" -tAc "SELECT count(*) FROM gold.fct_orders")"
[ "$pg_orders" = "$orders" ] || { echo "PostgreSQL holds $pg_orders rows, Strata $orders" >&2; exit 1; }

# -- 3. pgbench --------------------------------------------------------------------------------
start_server() {
  : >"$work/serve.out"
  "$strata" --project-dir "$project" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
  server_pid=$!
  for _ in $(seq 600); do
    grep -q '^listening on ' "$work/serve.out" && break
    kill -0 "$server_pid" 2>/dev/null || { echo "strata serve exited:" >&2; tail -20 "$work/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  server_port="$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/serve.out")"
  [ -n "$server_port" ] || { echo "strata serve did not print its address" >&2; exit 1; }
}
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || { echo "strata serve exited $? after SIGTERM" >&2; exit 1; }
  server_pid=""
}

mkdir -p "$work/pgbench"
cat >"$work/pgbench/point.sql" <<'SQL'
\set id random(1, :max_id)
SELECT order_id, customer_id, order_date, status, amount FROM gold.fct_orders WHERE order_id = :id;
SQL
cat >"$work/pgbench/aggregate.sql" <<'SQL'
\set c random(1, :max_customer)
SELECT status, count(*) AS orders, sum(amount) AS revenue FROM gold.fct_orders
WHERE customer_id BETWEEN :c AND :c + 50 GROUP BY status ORDER BY status;
SQL

# pgbench NAME DSN SCRIPT CLIENTS: prints "tps p50_ms p99_ms failed" (latencies from the
# per-transaction log).
bench() {
  local name="$1" dsn="$2" script="$3" n="$4" dir="$work/pgbench/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  local threads=$((n < 2 ? n : 2))
  local status=0
  "$pgbench" -n -M "$mode" -c "$n" -j "$threads" -T "$seconds" -f "$work/pgbench/$script.sql" \
    -D max_id="$max_id" -D max_customer="$max_customer" -l --log-prefix="$dir/log" \
    "$dsn" >"$dir/out.txt" 2>"$dir/err.txt" || status=$?
  local tps failed
  tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out.txt" | tail -1)"
  failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$dir/out.txt")"
  if [ "$status" -ne 0 ] || [ -z "$tps" ]; then
    failed="${failed:-?} (pgbench exit $status: $(grep -m1 -iE 'error|abort' "$dir/err.txt" || true))"
  fi
  cat "$dir"/log.* 2>/dev/null | awk '{print $3}' | sort -n >"$dir/latencies"
  local count p50 p99
  count="$(wc -l <"$dir/latencies")"
  p50="$(awk -v n="$count" 'NR == int((n + 1) / 2) { printf "%.3f", $1 / 1000 }' "$dir/latencies")"
  p99="$(awk -v n="$count" 'NR == int(n * 0.99 + 0.5) { printf "%.3f", $1 / 1000 }' "$dir/latencies")"
  echo "${tps:-0} ${p50:-nan} ${p99:-nan} ${failed:-0}"
}

start_server
strata_dsn="host=127.0.0.1 port=$server_port dbname=strata user=strata"
pg_dsn="$pg dbname=strata_bench"
[ "$(psql -X -d "$strata_dsn" -tAc "SELECT count(*) FROM gold.fct_orders")" = "$orders" ] \
  || { echo "strata serve does not answer the count" >&2; exit 1; }

echo "== pgbench -M $mode, $seconds s per run (latencies in ms)"
printf '%-10s %7s | %10s %8s %8s %7s | %10s %8s %8s %7s | %8s %8s\n' script clients \
  "strata tps" p50 p99 failed "pg tps" p50 p99 failed "tps s/pg" "p50 s/pg"
for script in point aggregate; do
  for n in $clients; do
    read -r s_tps s_p50 s_p99 s_failed < <(bench "strata-$script-$n" "$strata_dsn" "$script" "$n")
    read -r p_tps p_p50 p_p99 p_failed < <(bench "pg-$script-$n" "$pg_dsn" "$script" "$n")
    printf '%-10s %7s | %10.1f %8s %8s %7s | %10.1f %8s %8s %7s | %8s %8s\n' "$script" "$n" \
      "$s_tps" "$s_p50" "$s_p99" "$s_failed" "$p_tps" "$p_p50" "$p_p99" "$p_failed" \
      "$(awk -v a="$s_tps" -v b="$p_tps" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')" \
      "$(awk -v a="$s_p50" -v b="$p_p50" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
  done
done
stop_server

# -- 4. a large result, streamed -------------------------------------------------------------
echo "== streaming $stream_rows rows to psql"
start_server
strata_dsn="host=127.0.0.1 port=$server_port dbname=strata user=strata"
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status"; }
# Enough rows whatever the scale: the orders times the days of dim_date.
stream_sql="SELECT o.order_id, o.customer_id, o.status, o.amount, o.order_date, d.date_key
FROM gold.fct_orders o CROSS JOIN gold.dim_date d LIMIT $stream_rows"
psql -X -d "$strata_dsn" -tAc "SELECT count(*) FROM gold.fct_orders" >/dev/null
base="$(hwm)"
for how in select copy; do
  if [ "$how" = select ]; then
    cmd=(psql -X -d "$strata_dsn" -tA -c "$stream_sql")
  else
    cmd=(psql -X -d "$strata_dsn" -c "COPY ($stream_sql) TO STDOUT")
  fi
  start=$(date +%s.%N)
  read -r rows bytes < <("${cmd[@]}" | wc -lc)
  elapsed="$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')"
  [ "$rows" = "$stream_rows" ] || { echo "$how streamed $rows rows, not $stream_rows" >&2; exit 1; }
  printf '%-6s %9d rows %8.1f MB in %6s s; server peak RSS %7.1f MB (%.1f MB before)\n' "$how" \
    "$rows" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$elapsed" \
    "$(awk -v k="$(hwm)" 'BEGIN { print k / 1024 }')" "$(awk -v k="$base" 'BEGIN { print k / 1024 }')"
done
stop_server
