-- expect: timeout
-- table.move loops in C without running a Lua instruction, so the count hook never fires.
-- 4e8 steps take ~7 s here; an attacker would pass 1e15 and the call would never end.
return function(record) table.move({}, 1, 4e8, 2) end
