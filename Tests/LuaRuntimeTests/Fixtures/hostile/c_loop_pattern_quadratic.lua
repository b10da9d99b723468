-- expect: timeout
-- A quadratic string.find over 5e4 chars (about 8 s in the system matcher): the deadline stops it.
return function(record)
  local s = ("a"):rep(5e4)
  record.found = s:find(".-b") ~= nil
end
