-- A DAG of 41 tables that expands to 2^40 leaves: the encoder writes tables in C until
-- memory_mb is full (256 MB took 5-12 s past a 200 ms deadline before it looked at the clock).
local t = luapipe.object()
for _ = 1, 40 do t = { t, t } end
return function() return luapipe.json.encode(t) end
