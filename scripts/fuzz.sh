#!/usr/bin/env bash
# Fuzzes the JSON reader and the Lua value bridge with libFuzzer for SECONDS (default 600),
# starting from Fuzz/corpus/json; crashers land in Fuzz/crashers (keep them: the normal build
# of luapipe-fuzz replays files, and scripts/test.sh replays that folder).
# Usage: scripts/fuzz.sh [SECONDS] [json|bridge|both]   (the two targets can run side by side)
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_hiredis_dev  # the LuaPipeRedis target builds against it
secs=${1:-600}
kind=${2:-both}
swift build -c release --product luapipe-fuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library
mkdir -p Fuzz/crashers ".build-fuzz/corpus-$kind"
cp -n Fuzz/corpus/json/* ".build-fuzz/corpus-$kind/" 2>/dev/null || true
LUAPIPE_FUZZ_TARGET=$kind .build-fuzz/release/luapipe-fuzz ".build-fuzz/corpus-$kind" -max_total_time="$secs" \
  -max_len=65536 -artifact_prefix="Fuzz/crashers/$kind-" -print_final_stats=1 2>&1 | tail -8
