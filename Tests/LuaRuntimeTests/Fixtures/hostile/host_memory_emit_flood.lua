-- expect: memory
-- Emits are buffered outside the Lua allocator: 64 emits of one 8 MB string = 512 MB of host
-- memory for a plugin limited to 32 MB.
return function(record, ctx)
  local big = ("x"):rep(8 << 20)
  for i = 1, 64 do ctx.emit({ i = i, payload = big }) end
end
