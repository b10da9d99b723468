-- Cases that run in-process (HostMemoryTests): small enough that a regression cannot hurt.
local cases = {}

-- A DAG under a 32 MB limit: 2^14 strings of 4 KB (64 MB) behind 15 tables. Each way to
-- hand it over ends in the memory error (were the limit not kept, 64 MB would not hurt).
local function dag(depth)
  local t = { ("x"):rep(4096) }
  for _ = 1, depth do t = { t, t } end
  return t
end
function cases.dag_return() return { d = dag(14) } end
function cases.dag_encode(r) r.s = luapipe.json.encode(dag(14)) end
function cases.dag_shared(r, ctx) ctx.shared:set("k", dag(14)) end
function cases.dag_emit(r, ctx) ctx.emit({ d = dag(14) }) end
function cases.dag_argument(r, ctx) ctx.shared:incr(dag(14)) end

-- A large decode that fits: its scratch buffer must not stay allocated afterwards.
function cases.decode_large(r)
  r.n = #luapipe.json.decode("[" .. ("1,"):rep(2 << 20) .. "1]")
end
function cases.encode_large(r)
  local t = {}
  for i = 1, 2000000 do t[i] = i end
  r.n = #luapipe.json.encode(t)
end
function cases.collect()
  collectgarbage()
  collectgarbage()
end

-- A log line longer than the cap, and one with a multi-byte character across it.
function cases.log_long(r, ctx)
  ctx.log.info(("y"):rep(1 << 20))
  print(("é"):rep(40000))
end

return cases
