#!/usr/bin/env bash
# P6: records that wait on a service, many in flight. 20,000 records, 2 ms of latency each,
# concurrency 64 (the latency bound is 32,000 records/s):
#   P6a a Lua plugin, luapipe.sleep(0.002)           P6b a ConcurrentPlugin awaiting 2 ms
#   P6c a Lua plugin, luapipe.http.request           P6d the built-in `http` plugin
# P6c/d and the Python asyncio + aiohttp peer (64 in flight, order kept) ask one local nginx
# that answers after 2 ms (echo_sleep), started here on a free loopback port.
# Usage: scripts/bench-io.sh [RECORDS] [ROUNDS]
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_hiredis_dev  # the LuaPipeRedis target builds against it
need_io_bench_tools
n=${1:-20000}
rounds=${2:-3}
out=bench-out/io
mkdir -p "$out"
swift build -c release --product luapipe >&2
swift build -c release --product luapipe-io-bench >&2
bin=.build/release/luapipe
iobin=.build/release/luapipe-io-bench
python3 -c "
import sys
with open('$out/in.jsonl', 'w') as f:
    for i in range(1, $n + 1): f.write('{\"id\":%d,\"name\":\"user_%06d\"}\n' % (i, i))
"
port=$(free_port)
dir=$(cd "$out" && pwd)/nginx
mkdir -p "$dir"
sed -e "s|PORT|$port|g" -e "s|DIR|$dir|g" bench/io/nginx.conf > "$dir/nginx.conf"
nginx -c "$dir/nginx.conf" -p "$dir" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/geo/1" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port/geo/"
cat > "$out/p6c.yaml" <<YAML
api: 1
plugin_paths: [$PWD/bench/io]
plugins:
  - use: http
    config: { url: "$url" }
    allow: [http]
    http_hosts: ["127.0.0.1:$port"]
    concurrency: 64
YAML
cat > "$out/p6d.yaml" <<YAML
api: 1
plugins:
  - use: http
    config: { url: "$url{id}", into: geo, retries: 0 }
    concurrency: 64
YAML
cases=(
  "P6a Lua luapipe.sleep(0.002)|$bin run bench/io/p6a.yaml --input $out/in.jsonl --output $out/p6a.jsonl"
  "P6b ConcurrentPlugin, 2 ms await|$iobin run bench/io/p6b.yaml --input $out/in.jsonl --output $out/p6b.jsonl"
  "P6c Lua luapipe.http.request|$bin run $out/p6c.yaml --input $out/in.jsonl --output $out/p6c.jsonl"
  "P6d built-in http|$bin run $out/p6d.yaml --input $out/in.jsonl --output $out/p6d.jsonl"
  "Python asyncio + aiohttp|python3 bench/io/aiohttp_peer.py $url < $out/in.jsonl > $out/py.jsonl"
)
declare -A times
for ((r = 1; r <= rounds; r++)); do
  for c in "${cases[@]}"; do
    name=${c%%|*}; cmd=${c#*|}
    /usr/bin/time -f "%e" -o "$out/time.txt" bash -c "$cmd" || echo "failed: $name" >&2
    times[$name]+="$(cat "$out/time.txt") "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
py=$(echo "${times[Python asyncio + aiohttp]}" | median)
printf "\nP6: %d records, 2 ms each, 64 in flight, %d rounds, medians\n" "$n" "$rounds"
printf "%-36s %9s %12s %12s\n" case seconds records/s "vs aiohttp"
for c in "${cases[@]}"; do
  name=${c%%|*}
  t=$(echo "${times[$name]}" | median)
  awk -v n="$n" -v t="$t" -v py="$py" -v name="$name" 'BEGIN { printf "%-36s %9.2f %12.0f %11.2fx\n", name, t, n / t, py / t }'
done
for f in p6a p6b p6c p6d py; do
  lines=$(wc -l < "$out/$f.jsonl")
  [ "$lines" = "$n" ] || echo "$f: $lines records out of $n" >&2
done
cmp -s "$out/p6c.jsonl" "$out/p6d.jsonl" && echo "P6c and P6d outputs agree" || echo "P6c and P6d outputs differ" >&2
