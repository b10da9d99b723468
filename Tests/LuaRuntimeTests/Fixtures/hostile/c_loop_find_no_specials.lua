-- expect: timeout
-- The same needle as a pattern: it has no special characters, so find takes the plain path.
return function(record)
  local s = ("a"):rep(2 << 20)
  local p = ("a"):rep(1 << 20) .. "b"
  record.found = s:find(p)
  while true do end
end
