-- expect: timeout
-- The comparator runs inside table.sort (a C function); the hook still fires in it.
return function(record)
  local t = {}
  for i = 1, 100 do t[i] = i end
  table.sort(t, function(a, b) while true do end end)
end
