-- Each record names an operation on ctx.shared (`op`) and its arguments; the record comes out
-- with what the operation gave (`got`, or `ok` and `err` under pcall).
local plugin = { name = "shared_ops", version = "1.0.0", api = 1 }
function plugin.process(record, ctx)
  local op, key = record.op, record.key
  if op == "set" then
    ctx.shared:set(key, record.value)
  elseif op == "get" then
    record.got = ctx.shared:get(key)
    if record.got == nil then record.missing = true end
  elseif op == "incr" then
    record.ok, record.got = pcall(ctx.shared.incr, ctx.shared, key, record.by)
  elseif op == "delete" then
    ctx.shared:delete(key)
  elseif op == "set_big" then
    ctx.shared:set(key, string.rep("x", record.size))
  elseif op == "get_len" then
    record.got = #ctx.shared:get(key)
  elseif op == "keys" then
    record.got = luapipe.array(ctx.shared:keys())
  elseif op == "bad_key" then
    record.ok, record.err = pcall(function() return ctx.shared:get(5) end)
  elseif op == "set_function" then
    record.ok, record.err = pcall(function() ctx.shared:set("fn", print) end)
  elseif op == "gsub" then
    record.ok, record.err = pcall(function()
      return (("abc"):gsub("b", function(c) ctx.shared:get("x"); return c end))
    end)
  end
end
return plugin
