#!/usr/bin/env bash
# Runs the unit suites under AddressSanitizer and ThreadSanitizer, each in its own build
# folder (.build-asan, .build-tsan). The end-to-end suite (luapipeTests) is skipped: it runs
# the luapipe binary, which is not the sanitized build.
# Usage: scripts/sanitize.sh [address|thread]...
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_lua_dev
need_hiredis_dev  # the LuaPipeRedis target builds against it
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(address thread)
status=0
for kind in "${kinds[@]}"; do
  dir=.build-${kind/address/asan}
  dir=${dir/thread/tsan}
  echo "== $kind sanitizer ($dir)"
  swift build --build-tests --sanitize="$kind" --scratch-path "$dir"
  swift test --skip-build --sanitize="$kind" --scratch-path "$dir" --skip luapipeTests 2>&1 | tee "$dir.log" | grep -E "✘|Test run with|WARNING: |ERROR: |SUMMARY" || true
  grep -q "Test run with .* passed" "$dir.log" || status=1
done
exit $status
