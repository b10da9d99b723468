-- Waits in every place a plugin can: in pcall, in its own coroutines (wrap and resume), in an
-- __index metamethod; and the places it cannot (a gsub callback, a plain yield at the top, a
-- load reader, an xpcall message handler, a coroutine kept from another record's call).
local plugin = { name = "waits", version = "1.0.0", api = 1 }
local kept
local lazy = setmetatable({}, { __index = function(_, k) luapipe.sleep(0.001); return "lazy-" .. k end })

function plugin.process(record, ctx)
  local mode = record.mode
  if mode == "pcall" then
    record.ok = pcall(function() luapipe.sleep(0.002); record.inside = true end)
  elseif mode == "wrap" then
    local co = coroutine.wrap(function(a)
      luapipe.sleep(0.002)
      local b = coroutine.yield(a + 1)
      luapipe.sleep(0.001)
      return b * 2
    end)
    record.first, record.second = co(1), co(10)
  elseif mode == "resume" then
    local co = coroutine.create(function() luapipe.sleep(0.001); coroutine.yield("a"); return "b" end)
    local _, x = coroutine.resume(co)
    local _, y = coroutine.resume(co)
    record.got = x .. y
  elseif mode == "index" then
    record.v = lazy.x
  elseif mode == "gsub" then
    record.s = ("abc"):gsub("b", function(c) luapipe.sleep(0.001); return c end)
  elseif mode == "yield" then
    coroutine.yield(1)
  elseif mode == "reader" then
    local n = 0
    local f, err = load(function() n = n + 1; if n == 1 then luapipe.sleep(0.001); return "return 5" end end)
    record.loaded, record.err = f ~= nil, err
  elseif mode == "handler" then
    record.ok, record.err = xpcall(error, function(m) luapipe.sleep(0.001); return "handled" end, "e")
  elseif mode == "keep" then
    kept = coroutine.create(function() luapipe.sleep(0.05); return "done" end)
    record.ok, record.got = coroutine.resume(kept)
  elseif mode == "take" then
    record.ok, record.err = coroutine.resume(kept)
  elseif mode == "hang" then
    ctx.call("hang", {})
  elseif mode == "swallow" then
    -- A deadline while waiting cannot be caught.
    pcall(luapipe.sleep, 10)
    record.swallowed = true
  end
  record.n = ctx.record_number
end

return plugin
