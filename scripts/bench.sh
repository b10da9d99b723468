#!/usr/bin/env bash
# Measures luapipe against lua5.4 + lua-cjson on the same input, interleaved, and prints
# medians, ratios and peak RSS. Usage: scripts/bench.sh [RECORDS] [ROUNDS]
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_hiredis_dev  # the LuaPipeRedis target builds against it
need_bench_tools
n=${1:-1000000}
rounds=${2:-3}
out=bench-out
mkdir -p "$out"
swift build -c release --product luapipe >&2
swift build -c release --product luapipe-microbench >&2
bin=.build/release/luapipe
[ -f "$out/data-$n.jsonl" ] || python3 bench/gen.py "$n" "$out/data-$n.jsonl"
data="$out/data-$n.jsonl"

# name|command
cases=(
  "lua5.4+cjson|lua5.4 bench/reference.lua < $data > $out/ref.jsonl"
  "P1 luapipe 3 Lua plugins --workers 1|$bin run bench/lua.yaml --workers 1 --input $data --output $out/w1.jsonl"
  "P1 luapipe 3 Lua plugins --workers 2|$bin run bench/lua.yaml --workers 2 --input $data --output $out/w2.jsonl"
  "P2 luapipe Lua>set>Lua --workers 2|$bin run bench/mixed.yaml --workers 2 --input $data --output $out/mixed.jsonl"
  "P2 luapipe Lua>lookup>Lua --workers 2|$bin run bench/mixed-lookup.yaml --workers 2 --input $data --output $out/mixed-lookup.jsonl"
)
declare -A times rss
for ((r = 1; r <= rounds; r++)); do
  for c in "${cases[@]}"; do
    name=${c%%|*}; cmd=${c#*|}
    /usr/bin/time -f "%e %M" -o "$out/time.txt" bash -c "$cmd"
    read -r secs kb < "$out/time.txt"
    times[$name]+="$secs "
    rss[$name]+="$kb "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ref=$(echo "${times[lua5.4+cjson]}" | median)
printf "\n%d records, %d rounds, medians (this machine: %s cores)\n" "$n" "$rounds" "$(nproc)"
printf "%-40s %9s %12s %9s %10s\n" case seconds records/s "vs ref" "peak RSS"
for c in "${cases[@]}"; do
  name=${c%%|*}
  t=$(echo "${times[$name]}" | median)
  m=$(echo "${rss[$name]}" | median)
  awk -v n="$n" -v t="$t" -v ref="$ref" -v m="$m" -v name="$name" \
    'BEGIN { printf "%-40s %9.2f %12.0f %8.2fx %7.1f MB\n", name, t, n / t, ref / t, m / 1024 }'
done
p1=$(echo "${times[P1 luapipe 3 Lua plugins --workers 2]}" | median)
for c in "P2 luapipe Lua>set>Lua --workers 2" "P2 luapipe Lua>lookup>Lua --workers 2"; do
  awk -v p1="$p1" -v t="$(echo "${times[$c]}" | median)" -v name="$c" \
    'BEGIN { printf "%s: %.2fx the throughput of P1 --workers 2\n", name, p1 / t }'
done
python3 bench/compare.py "$out/ref.jsonl" "$out/w2.jsonl"
echo
echo "runtime API (luapipe-microbench, one thread):"
.build/release/luapipe-microbench 2000000
echo
# P3: the Python peer (asyncio + to_thread + lupa) on a tenth of the records (it is slow).
python3 -c 'import lupa' 2>/dev/null || python3 -m pip install -q lupa >/dev/null 2>&1
small=$((n / 10))
head -n "$small" "$data" > "$out/small.jsonl"
/usr/bin/time -f "%e" -o "$out/t.txt" python3 bench/python_peer.py < "$out/small.jsonl" > "$out/py.jsonl"
py=$(cat "$out/t.txt")
/usr/bin/time -f "%e" -o "$out/t.txt" "$bin" run bench/lua.yaml --workers 2 --input "$out/small.jsonl" --output "$out/lp.jsonl"
lp=$(cat "$out/t.txt")
awk -v py="$py" -v lp="$lp" -v n="$small" 'BEGIN { printf "P3 %d records: Python peer %.2f s, luapipe --workers 2 %.2f s: %.1fx\n", n, py, lp, py / lp }'
python3 bench/compare.py "$out/py.jsonl" "$out/lp.jsonl"
python3 bench/latency.py "$bin" bench/lua.yaml
# P7: the same pipeline fed from a Redis stream (starts its own redis-server).
scripts/bench-stream.sh "$n" "$rounds"
if [ -n "${BENCH_P4:-}" ]; then
  # P4: peak RSS at 10x the records (set BENCH_P4=1; generates a ~380 MB file).
  big=$((n * 10))
  [ -f "$out/data-$big.jsonl" ] || python3 bench/gen.py "$big" "$out/data-$big.jsonl"
  for m in $n $big; do
    /usr/bin/time -f "%M" -o "$out/rss.txt" "$bin" run bench/lua.yaml --workers 2 --input "$out/data-$m.jsonl" --output /dev/null
    echo "P4 $m records: peak RSS $(( $(cat "$out/rss.txt") / 1024 )) MB"
  done
fi
