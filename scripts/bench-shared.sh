#!/usr/bin/env bash
# ctx.shared: records/s of a pipeline doing one ctx.shared:incr per record, with the in-process
# store and with `shared: redis://...` at concurrency 64 and 1, against a redis-server started
# here on a free loopback port. The best of ROUNDS runs of each.
# Usage: scripts/bench-shared.sh [RECORDS] [ROUNDS]
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_redis
n=${1:-100000}
rounds=${2:-3}
out=bench-out/shared
mkdir -p "$out"
swift build -c release --product luapipe >&2
bin=.build/release/luapipe
seq 1 "$n" | sed 's/.*/{"id":&}/' > "$out/in.jsonl"
port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null' EXIT
for _ in $(seq 50); do [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
manifest() {  # NAME SHARED-LINE CONCURRENCY
    printf 'api: 1\nplugin_paths: [%s/bench/shared]\n%bplugins:\n  - use: count\n    concurrency: %s\n' \
        "$PWD" "$2" "$3" > "$out/$1.yaml"
}
manifest in-process "" 64
manifest redis-c64 "shared: redis://127.0.0.1:$port/bench\n" 64
manifest redis-c1 "shared: redis://127.0.0.1:$port/bench\n" 1
for name in in-process redis-c64 redis-c1; do
    best=
    for _ in $(seq "$rounds"); do
        redis-cli -p "$port" DEL bench:n >/dev/null
        start=$(date +%s.%N)
        "$bin" run "$out/$name.yaml" --input "$out/in.jsonl" --output /dev/null
        secs=$(echo "$(date +%s.%N) - $start" | bc)
        if [ -z "$best" ] || [ "$(echo "$secs < $best" | bc)" = 1 ]; then best=$secs; fi
    done
    printf '%-11s %8d records in %6.2f s: %8.0f records/s\n' "$name" "$n" "$best" "$(echo "$n / $best" | bc -l)"
done
echo "bench:n in Redis after the last run: $(redis-cli -p "$port" GET bench:n)"
