-- Tables built from tapes keep their keys' order for their whole life (OrderTests holds
-- what each case must give). Each is a `process` over the record of OrderTests.
local cases = {}

-- A decoded object, and an object that went through encode and decode, keep their order.
function cases.decode_keeps_order(r)
  r.decoded = luapipe.json.decode('{"z":1,"a":{"y":1,"b":2},"m":[{"q":1,"c":2}]}')
end
function cases.encode_decode_round_trip(r) return luapipe.json.decode(luapipe.json.encode(r)) end

-- Keys added to a decoded object go after its own, sorted; a deleted one is gone.
function cases.decoded_then_changed(r)
  local d = luapipe.json.decode('{"z":1,"y":2,"x":3}')
  d.y = nil; d.b = 1; d.a = 2
  r.d = d
end

-- Kept past the call: returned by the next call, nested keys still in order.
local kept
function cases.keep_nested(r)
  local out = kept and { kept = kept } or nil
  kept = r.nested
  return out
end

-- The record itself, iterated (pairs makes it a plain table) and kept for the next call.
local kept_record
function cases.keep_record_after_pairs(r)
  for _ in pairs(r) do end
  local out = kept_record
  kept_record = r
  if out then out.added = true end
  return out
end

-- A decoded value kept in a module variable, returned later.
local kept_decoded
function cases.keep_decoded(r)
  local out = kept_decoded and { kept = kept_decoded } or nil
  kept_decoded = luapipe.json.decode('{"zz":{"b":1,"a":2},"aa":[]}')
  return out
end

-- Through ctx.shared: stored and read back in order.
function cases.shared_round_trip(r, ctx)
  ctx.shared:set("rec", r)
  return ctx.shared:get("rec")
end

-- A list emptied in one call and returned in a later one is still a list.
local kept_list
function cases.emptied_list_later(r)
  local out = kept_list and { list = kept_list } or nil
  kept_list = r.list
  if kept_list then kept_list[1] = nil end
  return out
end

return cases
