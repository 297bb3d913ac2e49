#!/usr/bin/env bash
# Engine against engine on SQL as users write it: `strata sql` and DuckDB run the same SQL
# over the same files, best of N wall times each, after checking that both give the same
# answer. Strata's time is the whole command (start-up, reading and planning included);
# DuckDB's is timed inside Python from connect to the fetched row, so the interpreter's
# start and `import duckdb` (about 0.3 s) are not counted against it.
#   csv      a filter and aggregates (count distinct too) over the orders CSV
#   ndjson   the same over the orders as NDJSON
#   parquet  the same over the orders as Parquet
#   join     the orders joined with their versions (two tables of 1M and 1.2M rows)
#   topn     the 100 largest orders (ORDER BY ... LIMIT)
#   dedupe   row_number() over (partition by order_id order by version desc) = 1, over orders
#            in which every fifth order was sent again (1.2M rows at 1M orders)
#   qualify  the same dedupe written with QUALIFY
#   versions every version with its row_number and count(*) over its order (not filtered)
#   running  lag() and a running sum per customer over the orders
#
# Usage: bench/engine.sh [orders (default 1000000)] [repetitions (default 3)]
# Environment: STRATA (binary; default: cargo build --release), DUCKDB_PYTHON (a Python with
# the duckdb package; default: a venv under ~/.cache/strata, created on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
orders="${1:-1000000}"
reps="${2:-3}"
strata="$(release_strata)"
python="${DUCKDB_PYTHON:-$STRATA_CACHE_DIR/duckdb-venv/bin/python}"
if ! "$python" -c "import duckdb" 2>/dev/null; then
  python3 -m venv "$STRATA_CACHE_DIR/duckdb-venv"
  "$STRATA_CACHE_DIR/duckdb-venv/bin/pip" install --quiet duckdb
  python="$STRATA_CACHE_DIR/duckdb-venv/bin/python"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '[lake]\nroot = "lake"\n' >"$work/strata.toml"
"$strata" --project-dir "$work" generate --out "$work/drop" --formats csv --scale "$orders" \
  --batches 1 --clean >/dev/null
plain="$(find "$work/drop/orders" -name '*.csv' | head -1)"
# Re-sent orders: every fifth order a second time, with a higher version. The orders also as
# NDJSON and Parquet.
"$python" - "$plain" "$work" <<'PY'
import duckdb, sys
plain, work = sys.argv[1], sys.argv[2]
duckdb.sql(f"""
COPY (
  SELECT *, 1 AS version FROM read_csv('{plain}')
  UNION ALL
  SELECT *, 2 AS version FROM read_csv('{plain}') WHERE order_id % 5 = 0
) TO '{work}/versions.csv' (HEADER)""")
duckdb.sql(f"COPY (SELECT * FROM read_csv('{plain}')) TO '{work}/orders.ndjson' (FORMAT JSON)")
duckdb.sql(f"COPY (SELECT * FROM read_csv('{plain}')) TO '{work}/orders.parquet' (FORMAT PARQUET)")
PY
echo "orders: $orders; versions.csv: $(wc -l <"$work/versions.csv") lines, $(du -h "$work/versions.csv" | cut -f1)"

filtered="SELECT count(*) AS n, count(DISTINCT customer_id) AS customers,
    CAST(round(sum(total_amount)) AS BIGINT) AS total FROM %s
    WHERE status = 'shipped' AND total_amount > 100"
declare -A queries=(
  [csv]="$(printf "$filtered" orders)"
  [ndjson]="$(printf "$filtered" orders_json)"
  [parquet]="$(printf "$filtered" orders_parquet)"
  [join]="SELECT count(*) AS n, sum(v.version) AS versions, count(DISTINCT o.customer_id) AS customers
    FROM orders o JOIN versions v ON o.order_id = v.order_id WHERE o.channel = 'store'"
  [topn]="SELECT sum(order_id) AS ids, CAST(round(sum(total_amount)) AS BIGINT) AS total FROM (
      SELECT order_id, total_amount FROM orders ORDER BY total_amount DESC, order_id LIMIT 100)"
  [dedupe]="SELECT count(*) AS n, sum(order_id) AS ids, sum(version) AS versions FROM (
      SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY version DESC) AS rn FROM versions
    ) WHERE rn = 1"
  [qualify]="SELECT count(*) AS n, sum(order_id) AS ids, sum(version) AS versions FROM (
      SELECT * FROM versions QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY version DESC) = 1)"
  [versions]="SELECT count(*) AS n, sum(rn) AS rns, sum(n) AS ns FROM (
      SELECT row_number() OVER (PARTITION BY order_id ORDER BY version DESC) AS rn,
             count(*) OVER (PARTITION BY order_id) AS n
      FROM versions)"
  [running]="SELECT count(prev) AS n, round(sum(prev), 2) AS prev, round(sum(running), 2) AS running FROM (
      SELECT lag(total_amount) OVER (PARTITION BY customer_id ORDER BY order_id) AS prev,
             sum(total_amount) OVER (PARTITION BY customer_id ORDER BY order_id
                                     ROWS UNBOUNDED PRECEDING) AS running
      FROM orders)"
)
strata_setup="CREATE EXTERNAL TABLE versions STORED AS CSV LOCATION '$work/versions.csv' OPTIONS ('format.has_header' 'true');
CREATE EXTERNAL TABLE orders STORED AS CSV LOCATION '$plain' OPTIONS ('format.has_header' 'true');
CREATE EXTERNAL TABLE orders_json STORED AS JSON LOCATION '$work/orders.ndjson';
CREATE EXTERNAL TABLE orders_parquet STORED AS PARQUET LOCATION '$work/orders.parquet';"
duck_setup="CREATE VIEW versions AS SELECT * FROM read_csv('$work/versions.csv');
CREATE VIEW orders AS SELECT * FROM read_csv('$plain');
CREATE VIEW orders_json AS SELECT * FROM read_json('$work/orders.ndjson');
CREATE VIEW orders_parquet AS SELECT * FROM read_parquet('$work/orders.parquet');"

run_strata() { "$strata" --project-dir "$work" sql --format csv -c "$strata_setup $1" | tail -n +2; }
run_duckdb() {
  "$python" -c 'import duckdb, sys
con = duckdb.connect()
con.execute(sys.argv[1])
print(",".join(str(v) for v in con.execute(sys.argv[2]).fetchone()))' "$duck_setup" "$1"
}
# Best time in seconds of `reps` DuckDB runs, timed in Python.
best_duckdb() {
  "$python" - "$duck_setup" "$1" "$reps" <<'PY'
import duckdb, sys, time
setup, sql, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = None
for _ in range(reps):
    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(setup)
    con.execute(sql).fetchone()
    con.close()
    elapsed = time.perf_counter() - start
    best = elapsed if best is None else min(best, elapsed)
print(f"{best:.6f}")
PY
}
# Best wall time in seconds of `reps` runs of a function.
best() {
  local fn="$1" sql="$2" best=""
  for _ in $(seq "$reps"); do
    local start end t
    start=$(date +%s.%N)
    "$fn" "$sql" >/dev/null
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best="$t"; fi
  done
  echo "$best"
}

printf '%-8s %10s %10s %8s\n' query strata duckdb ratio
for name in csv ndjson parquet join topn dedupe qualify versions running; do
  sql="${queries[$name]}"
  ours="$(run_strata "$sql")"
  theirs="$(run_duckdb "$sql")"
  [ "$ours" = "$theirs" ] || { echo "$name: strata says $ours, DuckDB $theirs" >&2; exit 1; }
  s=$(best run_strata "$sql")
  d=$(best_duckdb "$sql")
  printf '%-8s %9.3fs %9.3fs %7.2fx\n' "$name" "$s" "$d" "$(echo "$s / $d" | bc -l)"
done
