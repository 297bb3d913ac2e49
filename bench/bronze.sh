#!/usr/bin/env bash
# Schema-on-read speed: the same aggregate over the landed bronze orders CSV, once through the
# bronze table (Strata's reader: drift union, rejected-row capture) and once through
# DataFusion's plain CSV reader, in one run on one machine. Target: ratio <= 1.2.
# Usage: bench/bronze.sh [orders (default 1000000)] [repetitions (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
rows="${1:-1000000}"
reps="${2:-5}"
cargo build --release --quiet --bin strata
strata="$CARGO_TARGET_DIR/release/strata"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/catalog"
printf '[lake]\nroot = "lake"\n' >"$work/strata.toml"
cat >"$work/catalog/sources.yml" <<'YAML'
sources:
  - name: shop
    kind: folder
    location: drop
    tables:
      - name: orders
        pattern: "orders/*.csv"
        format: csv
YAML
# Clean data, so DataFusion's reader (which stops at the first malformed line) can read it.
"$strata" --project-dir "$work" generate --out "$work/drop" --formats csv --scale "$rows" --batches 1 --clean >/dev/null
"$strata" --project-dir "$work" land >/dev/null
file="$(find "$work/lake/bronze/shop/orders" -name '*.csv' | head -1)"
echo "orders file: $(du -h "$file" | cut -f1), $rows orders"

aggregate="SELECT status, count(*) AS n, sum(order_id) AS s, max(customer_id) AS c FROM %s GROUP BY status ORDER BY status"
bronze_sql="$(printf "$aggregate" bronze.shop_orders)"
plain_sql="CREATE EXTERNAL TABLE plain STORED AS CSV LOCATION '$file' OPTIONS ('format.has_header' 'true'); $(printf "$aggregate" plain)"

# Median wall time in seconds of `reps` runs of a strata sql command.
median() {
  local sql="$1" times=()
  "$strata" --project-dir "$work" sql --format csv -c "$sql" >/dev/null # warm the page cache
  for _ in $(seq "$reps"); do
    local start end
    start=$(date +%s.%N)
    "$strata" --project-dir "$work" sql --format csv -c "$sql" >/dev/null
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# Both must agree before their speed is compared.
diff <("$strata" --project-dir "$work" sql --format csv -c "$bronze_sql") \
     <("$strata" --project-dir "$work" sql --format csv -c "$plain_sql") >/dev/null \
  || { echo "bronze and plain CSV results differ" >&2; exit 1; }

bronze=$(median "$bronze_sql")
plain=$(median "$plain_sql")
printf 'bronze table      %8.3f s\n' "$bronze"
printf 'DataFusion CSV    %8.3f s\n' "$plain"
printf 'ratio             %8.2f x  (target <= 1.2)\n' "$(echo "$bronze / $plain" | bc -l)"
