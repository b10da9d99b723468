-- expect: timeout
-- string.rep of an empty string loops n times in C copying nothing: nothing allocates, no VM
-- instruction runs. 2^32 copies take about half a minute in the system library; an
-- attacker passes math.maxinteger and the call never ends.
return function(record)
  record.n = #string.rep("", 1 << 32)
  while true do end  -- when rep returns at once, the deadline stops this loop instead
end
