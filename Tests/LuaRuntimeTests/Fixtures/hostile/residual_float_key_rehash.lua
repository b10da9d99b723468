-- expect: timeout
-- The float counterpart of residual_int_key_rehash.lua (SECURITY.md, "What is not
-- guaranteed"): Lua hashes a float from its mantissa and exponent, so floats can be chosen
-- to fall in one slot of a table of 2^m slots, and the rehash that grows the table is
-- quadratic inside one VM instruction. Here 32,769 keys, about a second and a half; it must
-- still end as a timeout (the call returned after its deadline).
return function(record)
  local t = {}
  local M = 2^16 - 1
  local n = 0
  for i = 0, -2000, -1 do
    for k = math.ceil((2^30 - i) / M), math.floor((2^31 - 1 - i) / M) do
      t[(k * M - i) * 2.0^(i - 31)] = true
      n = n + 1
      if n > 32768 then return end
    end
  end
end
