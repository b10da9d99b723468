#!/usr/bin/env bash
# The evaluation of libsimdjson-dev against luapipe's C reader (docs/performance.md).
# Usage: bench/simdjson/run.sh DATA.jsonl
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! [ -f /usr/include/simdjson.h ]; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y libsimdjson-dev; else sudo apt-get install -y libsimdjson-dev; fi
fi
out=$(mktemp -d)
gcc -O2 -c Sources/CLuaPipeJSON/lp_json.c -I Sources/CLuaPipeJSON/include -o "$out/lp_json.o"
g++ -O2 -std=c++17 bench/simdjson/compare.cpp "$out/lp_json.o" -I Sources/CLuaPipeJSON/include -lsimdjson -o "$out/compare"
"$out/compare" "$1"
