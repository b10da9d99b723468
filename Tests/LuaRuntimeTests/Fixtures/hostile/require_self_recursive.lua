-- expect: error: stack overflow
-- A module that requires itself: the cache is only filled once it returns.
return function(record) require("lib.selfreq") end
