-- expect: timeout
-- A module whose body runs away: it is required during the call, under its deadline.
return function(record) require("lib.loops") end
