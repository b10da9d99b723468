# P3: the seed's design in Python, for comparison: asyncio, each synchronous plugin call
# offloaded with asyncio.to_thread, the three Lua transforms run through lupa (one Lua
# runtime per plugin, like luapipe's isolation). Reads JSON Lines on stdin, writes stdout.
import asyncio, json, sys
from lupa import LuaRuntime

SOURCES = {
    "mask": 'function(r) r.email = string.gsub(r.email, "^[^@]*", "***", 1) end',
    "score": "function(r) r.score = r.score * 2; r.count = r.count + 1 end",
    "city": "function(r) r.city = string.upper(r.city); r.adult = r.age >= 18 end",
}

class LuaPlugin:
    def __init__(self, source):
        self.lua = LuaRuntime(unpack_returned_tuples=True)
        self.fn = self.lua.eval(source)

    def process(self, record):  # a blocking call: marshal in, call, marshal out
        t = self.lua.table_from(record)
        self.fn(t)
        return {k: t[k] for k in t.keys()}

async def main():
    plugins = [LuaPlugin(SOURCES[n]) for n in ("mask", "score", "city")]
    out = sys.stdout
    for line in sys.stdin:
        record = json.loads(line)
        for p in plugins:
            record = await asyncio.to_thread(p.process, record)
        out.write(json.dumps(record, separators=(",", ":")) + "\n")

asyncio.run(main())
