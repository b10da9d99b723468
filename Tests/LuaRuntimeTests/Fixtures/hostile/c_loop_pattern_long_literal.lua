-- expect: timeout
-- A pattern of a million literal "a"s and a "$": the matcher compares up to a million
-- characters at each start. Counting one step per start checked the clock only every few
-- billion comparisons; steps must count the characters compared.
return function(record)
  local s = ("a"):rep(2 << 20)
  local p = ("a"):rep(1 << 20) .. "$x"
  record.found = s:find(p)
end
