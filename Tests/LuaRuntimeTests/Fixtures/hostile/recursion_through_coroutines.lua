-- expect: error: stack overflow
-- Each level resumes a new coroutine: nested resumes grow the real C stack of the worker thread.
return function(record)
  local function f() return coroutine.wrap(f)() end
  f()
end
