-- expect: error: require takes a dotted name
-- "..x" would map to "//x" or climb: leading, trailing and doubled dots are refused.
return function(record)
  for _, name in ipairs({ "lib..loops", ".lib", "lib." }) do
    local ok, err = pcall(require, name)
    assert(not ok and tostring(err):find("require takes a dotted name", 1, true), name .. ": " .. tostring(err))
  end
  require("..etc.passwd")
end
