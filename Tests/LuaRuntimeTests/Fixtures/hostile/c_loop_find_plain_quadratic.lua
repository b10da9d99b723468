-- expect: timeout
-- A plain find of a 1 MiB needle ("a"s then "b") in 2 MiB of "a"s: a naive search compares
-- up to a MiB at each of a million places (~25 s), all inside one C call. A linear search
-- answers at once; the loop after it then runs into the deadline.
return function(record)
  local s = ("a"):rep(2 << 20)
  local p = ("a"):rep(1 << 20) .. "b"
  record.found = s:find(p, 1, true)
  while true do end
end
