-- The same three transforms in one lua5.4 + lua-cjson script, the reference for P1.
local cjson = require "cjson"
local decode, encode = cjson.decode, cjson.encode
local out = io.stdout
for line in io.lines() do
  local r = decode(line)
  r.email = r.email:gsub("^[^@]*", "***", 1)
  r.score = r.score * 2; r.count = r.count + 1
  r.city = r.city:upper(); r.adult = r.age >= 18
  out:write(encode(r), "\n")
end
