#!/usr/bin/env bash
# Throughput of `strata generate` on the orders CSV (the main table), on one core: rows/s,
# MB/s and peak RSS, next to a peer measured in the same run on the same core: Python's
# csv.writer writing as many similar rows.
#
# Usage: bench/generate.sh [ROWS]     (default 2000000; ROWS is --scale, i.e. orders)
set -euo pipefail

rows="${1:-2000000}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/strata/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One core for both contenders, so the figures compare writers rather than thread counts.
pin=()
if command -v taskset >/dev/null; then
    pin=(taskset -c 0)
fi

echo "building release binary..." >&2
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin strata
bin="$CARGO_TARGET_DIR/release/strata"
if ! "$bin" generate --help >/dev/null 2>&1; then
    echo "error: '$bin generate' is not available (is the subcommand wired into the CLI?)" >&2
    exit 1
fi

echo "strata generate: $rows orders..." >&2
start=$(date +%s%N)
/usr/bin/time -v -o "$work/time.txt" "${pin[@]}" "$bin" generate \
    --formats csv --scale "$rows" --batches 1 --seed 42 --out "$work/drop"
end=$(date +%s%N)
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")

echo "python csv.writer: $rows similar rows..." >&2
"${pin[@]}" python3 - "$rows" "$work/peer.csv" >"$work/peer.txt" <<'PY'
import csv, os, random, sys, time

rows, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(42)
statuses = ["pending", "paid", "shipped", "delivered", "cancelled", "returned"]
channels = ["web", "mobile", "store", "marketplace"]
day = 1767225600  # 2026-01-01T00:00:00Z
start = time.perf_counter()
with open(path, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["order_id", "customer_id", "order_ts", "status", "total_amount", "currency", "channel"])
    for i in range(1, rows + 1):
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day + rnd.randrange(68400)))
        w.writerow((i, rnd.randint(1, max(1, rows // 10)), ts, rnd.choice(statuses),
                    f"{rnd.randint(500, 500000) / 100:.2f}", "USD", rnd.choice(channels)))
elapsed = time.perf_counter() - start
print(rows, elapsed, os.path.getsize(path))
PY

python3 - "$work/drop/manifest.json" "$start" "$end" "$rss_kb" "$work/peer.txt" <<'PY'
import json, sys

manifest, start, end, rss_kb, peer = sys.argv[1:]
orders = [f for f in json.load(open(manifest))["files"] if f["entity"] == "orders"]
records = sum(f["records"] for f in orders)
size = sum(f["bytes"] for f in orders)
seconds = (int(end) - int(start)) / 1e9
peer_rows, peer_seconds, peer_bytes = open(peer).read().split()
peer_rows, peer_seconds, peer_bytes = int(peer_rows), float(peer_seconds), int(peer_bytes)
ours, theirs = records / seconds, peer_rows / peer_seconds
print(f"strata generate, orders CSV: {records:,} rows, {size / 1e6:,.1f} MB in {seconds:.2f} s "
      f"= {ours:,.0f} rows/s, {size / 1e6 / seconds:,.1f} MB/s, peak RSS {int(rss_kb) / 1024:,.1f} MiB")
print("  (wall time of the whole process: start-up, the customers file, hashing and the manifest included)")
print(f"python csv.writer, similar rows: {peer_rows:,} rows, {peer_bytes / 1e6:,.1f} MB in {peer_seconds:.2f} s "
      f"= {theirs:,.0f} rows/s, {peer_bytes / 1e6 / peer_seconds:,.1f} MB/s")
print(f"ratio: {ours / theirs:.1f}x the rows/s of Python's csv.writer")
PY
