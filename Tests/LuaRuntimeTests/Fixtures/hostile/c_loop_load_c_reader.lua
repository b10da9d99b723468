-- expect: timeout
-- load with a C function as its reader: collectgarbage() runs a full collection and returns
-- 0, so the parser reads "000..." one byte per call, all inside C, for hours. load turns the
-- reader's timeout into a result (nil, message); the plugin's next instruction meets it again.
return function(record)
  local big = {}
  for i = 1, 20000 do big[i] = { i } end
  record.loaded = load(collectgarbage) ~= nil
  record.after = "the call went on after its deadline"
end
