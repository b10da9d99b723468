#!/usr/bin/env bash
# Runs every test: unit suites of each module and end-to-end tests of the built binary.
# Installs what a fresh machine lacks first.
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_redis  # the LuaPipeRedis target builds against hiredis; the stream tests start redis-server
need_curl   # MetricsTests scrape /metrics with it
# The end-to-end tests run the release binary (what users run); build it first.
swift build -c release --product luapipe
export LUAPIPE_BIN="$PWD/.build/release/luapipe"
# The fuzz targets' seed corpus and every kept crasher, through the same checks the fuzzer makes.
swift build --product luapipe-fuzz
.build/debug/luapipe-fuzz Fuzz/corpus/json/* $(ls Fuzz/crashers/* 2>/dev/null)
if [ $# -gt 0 ]; then
    swift test "$@"
else
    # The Redis suites (streams, ctx.shared in Redis) wait on child processes (redis-server,
    # redis-cli, several luapipe) on their own threads for seconds at a time; they run on
    # their own, so that the suites that time in-process calls never share the machine's
    # two cooperative threads with them.
    swift test --skip 'RedisStreamTests|SharedRedisTests|RedisSharedStoreTests'
    swift test --skip-build --filter 'RedisStreamTests|SharedRedisTests|RedisSharedStoreTests'
fi
