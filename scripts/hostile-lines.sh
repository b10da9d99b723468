#!/usr/bin/env bash
# Times the refusal of hostile input lines near the 64 MiB line limit: one object with millions
# of keys and a stray byte after it, and the same with its first key repeated at the end. The
# C reader refuses them, then the Swift reader parses them again to say why: both must stay
# linear (each must be refused in well under 2 s). Usage: scripts/hostile-lines.sh [MiB]
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_hiredis_dev  # the LuaPipeRedis target builds against it
mib=${1:-63}
swift build -c release --product luapipe >&2
bin=.build/release/luapipe
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" "$mib" <<'PY'
import sys
d, mib = sys.argv[1], int(sys.argv[2])
limit = mib << 20
parts, size, i = [], 1, 0
while size < limit - 64:
    p = '"k%08d":%d' % (i, i % 10)
    parts.append(p); size += len(p) + 1; i += 1
body = "{" + ",".join(parts)
open(d + "/trailing.jsonl", "w").write(body + "}x\n")
open(d + "/duplicate.jsonl", "w").write(body + ',"k00000000":1}\n')
print("%d keys, %.1f MiB a line" % (i, (len(body) + 3) / 2**20), file=sys.stderr)
PY
cat > "$dir/m.yaml" <<'YAML'
api: 1
plugins:
  - use: remove
    config: { fields: [nothing] }
YAML
status=0
for c in trailing duplicate; do
  start=$(date +%s.%N)
  "$bin" run "$dir/m.yaml" --input "$dir/$c.jsonl" --output /dev/null 2> "$dir/err.txt" && true
  end=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  msg=$(grep -o 'unexpected text after the JSON value\|duplicate key "k00000000"' "$dir/err.txt" | head -1)
  echo "$c: refused in $secs s: ${msg:-NO EXPECTED MESSAGE: $(head -c 300 "$dir/err.txt")}"
  if [ -z "$msg" ] || awk -v s="$secs" 'BEGIN { exit !(s >= 2) }'; then status=1; fi
done
exit $status
