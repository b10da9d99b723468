-- expect: memory
-- A table of integers grows without end (each resize doubles the array part).
return function(record)
  local t = {}
  local i = 0
  while true do i = i + 1; t[i] = i end
end
