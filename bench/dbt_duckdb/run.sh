#!/usr/bin/env bash
# Runs the shop project on dbt-duckdb (the "twin"): stages a copy of the project with this
# folder's sources.yml in place of models/sources.yml (which declares Strata's bronze tables),
# then runs dbt with this folder's profiles.yml. Everything else (dbt_project.yml, models,
# macros, seeds, data tests) is the repository's, unchanged.
#
# Usage: bench/dbt_duckdb/run.sh [dbt args...]          (default: build)
# Environment:
#   SHOP_DROP         folder of generated raw files (required; strata generate --out ...)
#   SHOP_TWIN_DIR     where the staged project and the DuckDB file live (default /tmp/shop_twin)
#   SHOP_DUCKDB_PATH  the DuckDB database file (default $SHOP_TWIN_DIR/shop.duckdb)
#   DBT               the dbt executable (default ~/.cache/strata/dbt-venv/bin/dbt)
#
# Install dbt once, outside the repository:
#   python3 -m venv ~/.cache/strata/dbt-venv
#   ~/.cache/strata/dbt-venv/bin/pip install "dbt-core<1.12" dbt-duckdb
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
: "${SHOP_DROP:?set SHOP_DROP to the folder strata generate wrote (e.g. /tmp/shopdata)}"
export SHOP_DROP="$(cd "$SHOP_DROP" && pwd)"
twin="${SHOP_TWIN_DIR:-/tmp/shop_twin}"
export SHOP_DUCKDB_PATH="${SHOP_DUCKDB_PATH:-$twin/shop.duckdb}"
dbt="${DBT:-$HOME/.cache/strata/dbt-venv/bin/dbt}"
if [ ! -x "$dbt" ]; then
  echo "dbt not found at $dbt; install it with:" >&2
  echo "  python3 -m venv ~/.cache/strata/dbt-venv && ~/.cache/strata/dbt-venv/bin/pip install 'dbt-core<1.12' dbt-duckdb" >&2
  exit 1
fi

# Stage the project: a fresh copy of the shared files, then the twin's sources.
project="$twin/project"
rm -rf "$project"
mkdir -p "$project" "$(dirname "$SHOP_DUCKDB_PATH")"
cp "$repo/dbt_project.yml" "$project/"
for dir in models macros seeds data-tests snapshots; do
  if [ -d "$repo/$dir" ]; then cp -R "$repo/$dir" "$project/$dir"; fi
done
cp "$here/models_sources/sources.yml" "$project/models/sources.yml"

# No usage tracking: it would also write a .user.yml next to profiles.yml, in the repository.
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
if [ "$#" -eq 0 ]; then set -- build; fi
cd "$project"
exec "$dbt" "$@" --project-dir "$project" --profiles-dir "$here"
