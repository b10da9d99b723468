-- expect: timeout
-- The same with an empty separator: string.rep("", n, "") also copies nothing n times.
return function(record)
  record.n = #string.rep("", 1 << 32, "")
  while true do end
end
