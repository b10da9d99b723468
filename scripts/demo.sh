#!/usr/bin/env bash
# Builds luapipe and runs the example pipeline (examples/pipeline.yaml) over its sample data.
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_hiredis_dev  # the LuaPipeRedis target builds against it
echo "== building luapipe (release; the first build fetches and compiles dependencies)" >&2
swift build -c release --product luapipe >&2
bin="$PWD/.build/release/luapipe"
mkdir -p examples/out
echo "== the pipeline" >&2
"$bin" check examples/pipeline.yaml >&2
echo "== output of: luapipe run examples/pipeline.yaml --input examples/data/orders.jsonl --stats" >&2
"$bin" run examples/pipeline.yaml --input examples/data/orders.jsonl --stats
echo "== dead letters (examples/out/rejects.jsonl)" >&2
cat examples/out/rejects.jsonl
echo "== enrichment from a local HTTP service (examples/enrich.yaml, examples/service.py)" >&2
port_file=$(mktemp)
python3 examples/service.py > "$port_file" &
service=$!
trap 'kill $service 2>/dev/null; rm -f "$port_file"' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(head -1 "$port_file")
sed "s/PORT/$port/g" examples/enrich.yaml > examples/out/enrich.yaml
"$bin" run examples/out/enrich.yaml --input examples/data/orders.jsonl --dead-letter examples/out/enrich-rejects.jsonl --stats
echo "== orders the service did not know (examples/out/enrich-rejects.jsonl)" >&2
cat examples/out/enrich-rejects.jsonl
