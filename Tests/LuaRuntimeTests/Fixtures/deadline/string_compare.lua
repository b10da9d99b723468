-- Comparisons of two 60 MB strings that differ in the last byte: each `<` and `==` reads
-- both whole inside one VM instruction.
local a = ("a"):rep(6e7)
local b = ("a"):rep(6e7 - 1) .. "b"
return function()
  local x
  while true do
    x = a < b; x = a < b; x = a < b; x = a < b; x = a < b
    x = a == b; x = a == b; x = a == b; x = a == b; x = a == b
  end
end
