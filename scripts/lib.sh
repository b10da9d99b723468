# Shared by the scripts: install what a fresh machine lacks. Source it, then call need_*.
set -euo pipefail

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq >/dev/null
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# Lua 5.4 headers and library (the package builds against them) and pkg-config.
need_lua_dev() {
    command -v lua5.4 >/dev/null 2>&1 || apt_install lua5.4  # ConformanceTests compare with it
    command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config
    pkg-config --exists lua5.4 || apt_install liblua5.4-dev
}

# The reference tools the benchmark compares against.
need_bench_tools() {
    command -v lua5.4 >/dev/null 2>&1 || apt_install lua5.4
    lua5.4 -e 'require "cjson"' >/dev/null 2>&1 || apt_install lua-cjson
    [ -x /usr/bin/time ] || apt_install time
}

swift_build() {
    swift build -c "${CONFIG:-release}" "$@"
}

# The I/O benchmark's service and peer: nginx with the echo module, curl, aiohttp.
need_io_bench_tools() {
    need_bench_tools
    command -v nginx >/dev/null 2>&1 && [ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] \
        || apt_install nginx libnginx-mod-http-echo
    need_curl
    python3 -c 'import aiohttp' 2>/dev/null || python3 -m pip install -q aiohttp >/dev/null 2>&1
}

# curl: the metrics tests scrape /metrics with it, the I/O benchmark drives its service.
need_curl() {
    command -v curl >/dev/null 2>&1 || apt_install curl
}

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# hiredis headers (the LuaPipeRedis target builds against them): every script that builds
# calls this.
need_hiredis_dev() {
    command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config
    pkg-config --exists hiredis || apt_install libhiredis-dev
}

# redis-server for the stream tests and benchmark (each starts its own on a free port), and
# the hiredis headers.
need_redis() {
    need_hiredis_dev
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
}
