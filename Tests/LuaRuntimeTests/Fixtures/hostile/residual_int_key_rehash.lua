-- expect: timeout
-- A residual the deadline cannot cut short (SECURITY.md, "What is not guaranteed"): integer
-- keys that are multiples of 2^m - 1 all fall in one slot of a table of 2^m slots, and the
-- rehash that grows the table is quadratic inside one VM instruction. Here small enough to
-- take about a second; it must still end as a timeout (the call returned after its deadline).
return function(record)
  local D = (1 << 16) - 1
  local t = {}
  for j = 1, (1 << 15) + 1 do t[j * D] = true end
end
