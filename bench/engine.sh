#!/usr/bin/env bash
# Engine against engine on window functions as users write them: `strata sql` and DuckDB run
# the same SQL over the same CSV files, best of N wall times each (whole commands: start-up,
# reading and planning included), after checking that both give the same answer.
#   dedupe   row_number() over (partition by order_id order by version desc) = 1, over orders
#            in which every fifth order was sent again (1.2M rows at 1M orders)
#   qualify  the same dedupe written with QUALIFY
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
if [ -n "${STRATA:-}" ]; then
  strata="$STRATA"
else
  cargo build --release --quiet --bin strata
  strata="$CARGO_TARGET_DIR/release/strata"
fi
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
# Re-sent orders: every fifth order a second time, with a higher version.
"$python" - "$plain" "$work/versions.csv" <<'PY'
import duckdb, sys
duckdb.sql(f"""
COPY (
  SELECT *, 1 AS version FROM read_csv('{sys.argv[1]}')
  UNION ALL
  SELECT *, 2 AS version FROM read_csv('{sys.argv[1]}') WHERE order_id % 5 = 0
) TO '{sys.argv[2]}' (HEADER)""")
PY
echo "orders: $orders; versions.csv: $(wc -l <"$work/versions.csv") lines, $(du -h "$work/versions.csv" | cut -f1)"

declare -A queries=(
  [dedupe]="SELECT count(*) AS n, sum(order_id) AS ids, sum(version) AS versions FROM (
      SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY version DESC) AS rn FROM versions
    ) WHERE rn = 1"
  [qualify]="SELECT count(*) AS n, sum(order_id) AS ids, sum(version) AS versions FROM (
      SELECT * FROM versions QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY version DESC) = 1)"
  [running]="SELECT count(prev) AS n, round(sum(prev), 2) AS prev, round(sum(running), 2) AS running FROM (
      SELECT lag(total_amount) OVER (PARTITION BY customer_id ORDER BY order_id) AS prev,
             sum(total_amount) OVER (PARTITION BY customer_id ORDER BY order_id
                                     ROWS UNBOUNDED PRECEDING) AS running
      FROM orders)"
)
strata_setup="CREATE EXTERNAL TABLE versions STORED AS CSV LOCATION '$work/versions.csv' OPTIONS ('format.has_header' 'true');
CREATE EXTERNAL TABLE orders STORED AS CSV LOCATION '$plain' OPTIONS ('format.has_header' 'true');"
duck_setup="CREATE VIEW versions AS SELECT * FROM read_csv('$work/versions.csv');
CREATE VIEW orders AS SELECT * FROM read_csv('$plain');"

run_strata() { "$strata" --project-dir "$work" sql --format csv -c "$strata_setup $1" | tail -n +2; }
run_duckdb() {
  "$python" -c 'import duckdb, sys
con = duckdb.connect()
con.execute(sys.argv[1])
print(",".join(str(v) for v in con.execute(sys.argv[2]).fetchone()))' "$duck_setup" "$1"
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
for name in dedupe qualify running; do
  sql="${queries[$name]}"
  ours="$(run_strata "$sql")"
  theirs="$(run_duckdb "$sql")"
  [ "$ours" = "$theirs" ] || { echo "$name: strata says $ours, DuckDB $theirs" >&2; exit 1; }
  s=$(best run_strata "$sql")
  d=$(best run_duckdb "$sql")
  printf '%-8s %9.3fs %9.3fs %7.2fx\n' "$name" "$s" "$d" "$(echo "$s / $d" | bc -l)"
done
