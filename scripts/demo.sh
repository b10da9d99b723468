#!/usr/bin/env bash
# Builds luapipe and runs the example pipeline (examples/pipeline.yaml) over its sample data.
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
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
