#!/usr/bin/env bash
# P7: P1's pipeline (bench/lua.yaml) fed from a Redis stream through a consumer group, against
# the same run over files and a redis-py consumer-group worker doing the same three transforms
# (bench/stream.py). A redis-server is started here on a free loopback port, without
# persistence. Before each stream case the input stream is filled (XADD from Python, field
# `json`) and only the consumers are timed: from their start to the last entry of the output
# stream (the ms time in its XADD id, Redis's clock on this machine), so the 1 s of
# --exit-when-idle-ms is not counted. redis-server's CPU (/proc/PID/stat) is measured over
# each consumer run. Every case's output is counted, and its records compared as a set with
# the file mode's output. Usage: scripts/bench-stream.sh [RECORDS] [ROUNDS]
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_redis
need_bench_tools
python3 -c 'import redis' 2>/dev/null || python3 -m pip install -q redis >/dev/null 2>&1
n=${1:-200000}
rounds=${2:-3}
out=bench-out/stream
mkdir -p "$out"
swift build -c release --product luapipe >&2
bin=.build/release/luapipe
[ -f "bench-out/data-$n.jsonl" ] || python3 bench/gen.py "$n" "bench-out/data-$n.jsonl"
data="bench-out/data-$n.jsonl"
port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$out/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null' EXIT
for _ in $(seq 50); do [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
url=redis://127.0.0.1:$port
tick=$(getconf CLK_TCK)
redis_cpu() { awk '{print $14 + $15}' "/proc/$redis_pid/stat"; }  # in clock ticks
now_ms() { date +%s%3N; }
consumer() {  # NAME: luapipe as consumer NAME of group g, in the background
    "$bin" run bench/lua.yaml --workers 2 --input "$url/in?group=g&consumer=$1" --output "$url/out" \
        --exit-when-idle-ms 1000 2>>"$out/stderr.log"
}

cases=("file --workers 2" "stream, 1 consumer" "stream, 2 consumers" "redis-py, 1 consumer")
declare -A times cpu
load=$(cut -d' ' -f1 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
  for c in "${cases[@]}"; do
    if [ "$c" = "file --workers 2" ]; then
        /usr/bin/time -f "%e" -o "$out/time.txt" "$bin" run bench/lua.yaml --workers 2 --input "$data" --output "$out/file.jsonl"
        times[$c]+="$(cat "$out/time.txt") "
        continue
    fi
    redis-cli -p "$port" DEL out >/dev/null
    python3 bench/stream.py fill "$port" in "$data"
    before=$(redis_cpu)
    start=$(now_ms)
    case $c in
      "stream, 1 consumer") consumer c1 ;;
      "stream, 2 consumers") consumer c1 & p1=$!; consumer c2 & p2=$!; wait $p1; wait $p2 ;;
      "redis-py, 1 consumer") python3 bench/stream.py peer "$port" in out g py1 ;;
    esac
    cpu[$c]+="$(( $(redis_cpu) - before )) "
    read -r last count < <(python3 bench/stream.py last "$port" out)
    times[$c]+="$(awk -v a="$start" -v b="$last" 'BEGIN { print (b - a) / 1000 }') "
    [ "$count" = "$n" ] || echo "$c, round $r: $count records out of $n" >&2
    if [ "$r" = "$rounds" ]; then
        echo "$c: $(python3 bench/stream.py check "$port" out "$out/file.jsonl")" >&2
    fi
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
file=$(echo "${times[file --workers 2]}" | median)
py=$(echo "${times[redis-py, 1 consumer]}" | median)
printf "\nP7: %d records, P1's 3 Lua plugins, %d rounds, medians (this machine: %s cores, load average %s at the start, %s at the end)\n" \
    "$n" "$rounds" "$(nproc)" "$load" "$(cut -d' ' -f1 /proc/loadavg)"
printf "%-24s %9s %12s %9s %11s %14s %12s\n" case seconds records/s "vs file" "vs redis-py" "redis-server" "per record"
for c in "${cases[@]}"; do
  t=$(echo "${times[$c]}" | median)
  ticks=$(echo "${cpu[$c]:-0}" | median)
  awk -v n="$n" -v t="$t" -v f="$file" -v py="$py" -v ticks="$ticks" -v hz="$tick" -v name="$c" 'BEGIN {
    s = ticks / hz
    printf "%-24s %9.2f %12.0f %8.2fx %10.2fx %12.2f s %9.2f us\n", name, t, n / t, f / t, py / t, s, s * 1e6 / n }'
done
one=$(echo "${times[stream, 1 consumer]}" | median)
awk -v f="$file" -v py="$py" -v t="$one" 'BEGIN {
  a = f / t; b = py / t; ma = "missed"; mb = "missed"
  if (a >= 0.35) ma = "met"
  if (b >= 5) mb = "met"
  printf "one consumer: %.2fx file mode (goal >= 0.35x: %s), %.2fx redis-py (goal >= 5x: %s)\n", a, ma, b, mb }'
