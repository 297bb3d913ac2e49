# Sourced by the scripts: one build directory outside the clone, so a later run on the same
# machine (a fresh CI clone included) reuses the previous build.
export STRATA_CACHE_DIR="${STRATA_CACHE_DIR:-$HOME/.cache/strata}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$STRATA_CACHE_DIR/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# The strata binary a benchmark runs: $STRATA, or a release build of this checkout.
release_strata() {
  if [ -z "${STRATA:-}" ]; then
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && cargo build --release --quiet --bin strata) >&2
  fi
  echo "${STRATA:-$CARGO_TARGET_DIR/release/strata}"
}

# Copies the example project (the repository root's dbt project and its catalog) into $1.
copy_example_project() {
  local repo part
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  for part in catalog dbt_project.yml models macros seeds data-tests snapshots; do
    cp -R "$repo/$part" "$1/"
  done
}
