-- Plugins that could tell a lazily built record from a plain table, if anything leaked.
-- Each is a `process` over the record of LazyRecordTests; the test holds what each must give.
local cases = {}

function cases.read_one(r) r.b = r.b .. "!" end
function cases.delete_unread(r) r.a = nil end
function cases.write_unread(r) r.c = 5 end
function cases.read_missing(r) r.m = r.nothere == nil end
function cases.deleted_stays_deleted(r)
  local _ = r.a
  r.a = nil
  r.again = r.a == nil
end
function cases.add_then_delete(r) r.z = 1; r.z = nil; r.b = nil end
function cases.nested_keeps_order(r) r.c.x = 0 end

function cases.pairs_sees_every_field(r)
  local _ = r.a
  local keys = {}
  for k in pairs(r) do keys[#keys + 1] = k end
  table.sort(keys)
  r.keys = table.concat(keys, ",")
end

function cases.next_sees_every_field(r)
  local n, k = 0, next(r)
  while k ~= nil do n = n + 1; k = next(r, k) end
  r.n = n
end

function cases.rawget_sees_unread(r) r.raw = rawget(r, "b") end
function cases.rawset_unread(r) rawset(r, "a", 2) end
function cases.no_metatable(r) r.mt = getmetatable(r) == nil end

function cases.setmetatable_keeps_fields(r)
  setmetatable(r, { __index = function() return "default" end })
  r.missing = r.nope
end

function cases.mark_as_object(r) luapipe.object(r); r.e = 1 end
function cases.return_itself(r) return r end
function cases.emit_itself(r, ctx) ctx.emit(r); return false end
function cases.encode_itself(r) r.json = luapipe.json.encode(r) end
function cases.integer_keys_are_absent(r) r.i = r[1] == nil and #r == 0 end

-- A wide record (its keys are looked up through a hash): reads, writes, deletes, adds.
function cases.wide(r)
  for i = 1, 40, 3 do r["k" .. i] = r["k" .. i] * 2 end
  r.k2 = nil
  r.k40 = "last"
  r.k41 = r.k39 + 1
  r.missing = r.k0 == nil
end

-- Refused when written back, as for a plain table.
function cases.integer_key_added(r) r[1] = "x" end
function cases.list_item_added(r) table.insert(r, "x") end

-- Kept past its call: the next call emits it, whole.
local kept
function cases.keep_then_emit(r, ctx)
  if kept then ctx.emit(kept); kept.a = "read later" end
  kept = r
end

return cases
