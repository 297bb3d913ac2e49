#!/usr/bin/env bash
# The shop project end to end on both engines, on the same generated files, one machine:
#   1. strata generate --scale N (dirty data, drift, --batches B daily drops)
#   2. dbt-duckdb (the twin, bench/dbt_duckdb/): dbt build, reading the raw files in place
#   3. Strata: strata land, then strata build --project-dir .
# and prints the wall times and their ratio, then the gold row counts of both engines.
#
# Usage: bench/build.sh [SCALE (orders, default 1000000)] [BATCHES (default 3)]
# Environment:
#   STRATA         strata binary to use (default: cargo build --release, as the other benches)
#   DBT            dbt executable (default ~/.cache/strata/dbt-venv/bin/dbt; see below)
#   SHOP_BENCH_DIR work directory (default: a fresh temporary directory, removed at the end;
#                  set it to keep the data, the lake and the DuckDB file)
#   SHOP_DBT_THREADS  dbt threads (default 1: DuckDB parallelizes each model itself)
#
# dbt-duckdb is installed once, outside the repository:
#   python3 -m venv ~/.cache/strata/dbt-venv
#   ~/.cache/strata/dbt-venv/bin/pip install "dbt-core<1.12" dbt-duckdb
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scale="${1:-1000000}"
batches="${2:-3}"
export DBT="${DBT:-$HOME/.cache/strata/dbt-venv/bin/dbt}"
python="$(dirname "$DBT")/python"

. "$repo/scripts/env.sh"
strata="$(release_strata)"
[ -x "$DBT" ] || { echo "dbt not found at $DBT (see the install lines at the top of $0)" >&2; exit 1; }

if [ -n "${SHOP_BENCH_DIR:-}" ]; then
  work="$SHOP_BENCH_DIR"
  # A kept lake would make the next land find nothing new and the build incremental.
  rm -rf "$work/project" "$work/twin" "$work/lake"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# A Strata project directory holding the shop project: strata.toml (its lake in $work), the
# landing declaration, the dbt project files, and drop/ with the generated raw files.
project="$work/project"
mkdir -p "$project"
copy_example_project "$project"
printf '[lake]\nroot = "%s"\n\n[land]\nsources = "catalog/sources.yml"\n' "$work/lake" >"$project/strata.toml"

echo "== generate: $scale orders, $batches batches"
start=$(now)
"$strata" --project-dir "$project" generate --out "$project/drop" --scale "$scale" --batches "$batches" >/dev/null
echo "generated $(du -sh "$project/drop" | cut -f1) in $(elapsed "$start" "$(now)") s"

echo "== dbt-duckdb: dbt build"
export SHOP_DROP="$project/drop" SHOP_TWIN_DIR="$work/twin"
rm -rf "$work/twin"
start=$(now)
dbt_status=0
"$repo/bench/dbt_duckdb/run.sh" build >"$work/dbt_build.log" 2>&1 || dbt_status=$?
dbt_time=$(elapsed "$start" "$(now)")
grep -E "Done\. PASS=|ERROR=|Completed with" "$work/dbt_build.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -2 || true
if [ "$dbt_status" -ne 0 ]; then
  echo "dbt build failed (exit $dbt_status); log: $work/dbt_build.log" >&2
  tail -30 "$work/dbt_build.log" >&2
  exit 1
fi
echo "dbt-duckdb build   ${dbt_time} s"

echo "== Strata: strata land, strata build"
start=$(now)
(cd "$project" && "$strata" land --project-dir . >/dev/null)
land_time=$(elapsed "$start" "$(now)")
echo "strata land        ${land_time} s"
if ! "$strata" build --help >/dev/null 2>&1; then
  echo "strata build: this strata binary ($strata) has no 'build' command yet." >&2
  echo "The dbt-duckdb time above stands alone; rerun when 'strata build --project-dir .' exists." >&2
  exit 2
fi
start=$(now)
(cd "$project" && "$strata" build --project-dir .) >"$work/strata_build.log" 2>&1 || {
  echo "strata build failed; log: $work/strata_build.log" >&2
  tail -30 "$work/strata_build.log" >&2
  exit 1
}
strata_time=$(elapsed "$start" "$(now)")
echo "strata build       ${strata_time} s"

echo "== summary ($scale orders, $batches batches)"
printf 'dbt-duckdb build          %8.2f s\n' "$dbt_time"
printf 'strata build              %8.2f s\n' "$strata_time"
printf 'strata land + build       %8.2f s\n' "$(awk -v a="$land_time" -v b="$strata_time" 'BEGIN { print a + b }')"
printf 'ratio strata/dbt-duckdb   %8.2f x  (build only; land + build: %.2f x)\n' \
  "$(awk -v a="$strata_time" -v b="$dbt_time" 'BEGIN { print a / b }')" \
  "$(awk -v a="$land_time" -v s="$strata_time" -v b="$dbt_time" 'BEGIN { print (a + s) / b }')"

echo "== gold row counts (dbt-duckdb | Strata)"
for model in dim_customers dim_products dim_date fct_orders fct_order_items fct_web_events agg_daily_revenue; do
  duck=$("$python" -c "import duckdb,sys; print(duckdb.connect(sys.argv[1], read_only=True).execute('select count(*) from gold.$model').fetchone()[0])" "$work/twin/shop.duckdb" 2>/dev/null || echo "?")
  strata_n=$(cd "$project" && "$strata" sql --project-dir . --format csv -c "SELECT count(*) AS n FROM gold.$model" 2>/dev/null | tail -1 || echo "?")
  printf '  %-20s %10s | %10s\n' "$model" "$duck" "$strata_n"
done
