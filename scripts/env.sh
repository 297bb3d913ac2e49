# Sourced by the scripts: one build directory outside the clone, so a later run on the same
# machine (a fresh CI clone included) reuses the previous build.
export STRATA_CACHE_DIR="${STRATA_CACHE_DIR:-$HOME/.cache/strata}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$STRATA_CACHE_DIR/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
