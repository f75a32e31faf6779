#!/usr/bin/env bash
# mmkt serve under load, and a screenshot of its page, on a trained Fashion-MNIST run:
#   1. `mmkt serve RUN --index all --load-test`: the server on a free loopback port in this
#      process, text queries (POST /api/query, top 12) over every training and test image (70k)
#      from 1, 8 and 32 keep-alive clients, REQUESTS each; requests/s, p50/p99 latency as the
#      clients see it, errors, resident memory at the start and end of each level;
#   2. the page in headless chromium with ?q=... -> serve.png (the README's picture).
# Evidence in experiments/results/serve_load/: command, machine, load.{json,md}, logs, serve.png.
# Usage: RUN=runs/fashion_strong_conv_s0 [REQUESTS=10000] [THREADS=2] bash experiments/serve_load.sh
# (RUN comes from `NAME=fashion_strong_conv CONFIG=experiments/fashion_strong_conv.json bash
# experiments/fashion_strong.sh`.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
run=${RUN:?set RUN to a trained Fashion-MNIST run directory}
requests=${REQUESTS:-10000}
workers=${THREADS:-2}
out=experiments/results/serve_load
mkdir -p "$out"
"$mmkt" info > "$out/machine.json"
cmd=("$mmkt" serve "$run" --index all --workers "$workers" --load-test --requests "$requests" --out "$out")
echo "${cmd[*]}" > "$out/command.txt"
start=$(date +%s)
"${cmd[@]}" 2>&1 | tee "$out/load.log"
echo "load test: $(( $(date +%s) - start )) s wall" > "$out/wall_time.txt"

# The page, as a person sees it after typing a caption.
"$mmkt" serve "$run" --index all --port 0 > "$out/serve.log" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true' EXIT
url=""
for _ in $(seq 600); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$out/serve.log" || true)
  [ -n "$url" ] && break
  sleep 0.2
done
[ -n "$url" ] || { echo "mmkt serve did not start"; cat "$out/serve.log"; exit 1; }
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --user-data-dir="$profile" --hide-scrollbars \
  --virtual-time-budget=15000 --window-size=1280,1000 --screenshot="$out/serve.png" \
  "${url}?q=an%20ankle%20boot%20with%20a%20heel" 2>/dev/null
rm -rf "$profile"
echo "chromium --headless --window-size=1280,1000 --screenshot=serve.png '${url}?q=an%20ankle%20boot%20with%20a%20heel'" >> "$out/command.txt"
kill -INT $pid
wait $pid || true
trap - EXIT
echo "wrote $out/load.md and $out/serve.png"
