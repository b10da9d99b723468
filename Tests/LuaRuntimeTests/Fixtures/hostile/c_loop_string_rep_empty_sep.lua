-- expect: timeout
-- The same with an empty separator: string.rep("", n, "") also copies nothing n times.
return function(record)
  while true do record.n = #string.rep("", 1 << 32, "") end
end
