-- Pattern cases run both by the sandbox's matcher and by the system's lua5.4
-- (patterns.expected holds what lua5.4 printed): the two must agree.
return function()
  local out = {}
  local function show(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do
      local v = select(i, ...)
      parts[#parts + 1] = type(v) == "string" and string.format("%q", v) or tostring(v)
    end
    out[#out + 1] = table.concat(parts, ", ")
  end
  local function try(f, ...)
    local r = table.pack(pcall(f, ...))
    if r[1] then show(table.unpack(r, 2, r.n)) else show("error", (tostring(r[2]):gsub("^.-:%d+: ", ""))) end
  end
  local subjects = { "hello world", "", "  trim me  ", "key=value; k2 = v2", "a,b,,c", "(foo(bar))baz",
    "THE (quick) fox", "abc123def456", "x = 10.5e3", "\0bin\0ary", "aaa", "ümlaut é", "[[x]]", "one two  three" }
  local patterns = { "o", "l+", "l*", "l-", "l?", "^h", "d$", "%a+", "%A+", "%d+", "%s*(.-)%s*$", "(%w+)=(%w+)",
    "(%w+)%s*=%s*(%w+)", "[^,]*", "%b()", "%f[%w]%w+", "%f[%a]%a+%f[%A]", "()", "(h)(e)", "(.)%1", "[%a_][%w_]*",
    "[a-c]+", "[]]", "[^%s]+", "%.", "[%d.]+", "%x+", "(%d+)%.?(%d*)", "^(%s*)$", "(a*(.)%w(%s*))", ".-", "$", "^",
    "%z", "[\0]", "%u+", "%l+", "%p+", "%c", "%g+", "q(u)", "()o()", "a-b", "[a-]", "[%]]", "%%" }
  for _, s in ipairs(subjects) do
    for _, p in ipairs(patterns) do
      try(string.find, s, p)
      try(string.match, s, p)
      try(string.find, s, p, 3)
      try(string.match, s, p, -4)
      try(string.gsub, s, p, "<%0>")
      try(string.gsub, s, p, "%1", 2)
      local acc = {}
      local ok, err = pcall(function() for a, b in string.gmatch(s, p) do acc[#acc + 1] = tostring(a) .. "|" .. tostring(b) end end)
      show("gmatch", ok and table.concat(acc, ";") or ("error " .. tostring(err):gsub("^.-:%d+: ", "")))
    end
  end
  try(string.find, "a.b", ".", 1, true)
  try(string.find, "abc", "", 10)
  try(string.find, "abc", "", 4)
  try(string.gsub, "hello world", "(o)", { o = "0" })
  try(string.gsub, "hello world", "%w+", function(w) return w:upper() end)
  try(string.gsub, "hello", "l", false)
  try(string.gsub, "abc", "%w", "%2")
  try(string.gsub, "abc", "%w", "%x")
  try(string.gsub, "abc", "(%w)", function() return {} end)
  try(string.gsub, "abc", "", "-")
  try(string.gsub, "abc", "b*", "-")
  try(string.gsub, "hello world", "o", "0", 1)
  try(string.find, "abc", "[a")
  try(string.find, "abc", "%")
  try(string.find, "abc", "(()")
  try(string.find, "abc", "%1")
  try(string.find, "abc", "a)")
  try(string.find, "abc", "%b")
  try(string.find, "abc", "%fa")
  try(string.match, string.rep("a", 40), string.rep("(a)", 33))
  try(string.gsub, "abc", ".", { a = 1, b = true })
  try(string.match, "  x", "()x()")
  try(string.gsub, "x y", "()", "%1")
  for k, v in string.gmatch("a=1, b=2, c=3", "(%w+)=(%w+)") do show("kv", k, v) end
  for w in string.gmatch("one two three", "%a+", 5) do show("from 5", w) end
  for w in string.gmatch("^a^b", "^%w") do show("caret", w) end
  -- Bytes >= 128 as \ddd, so the text is plain ASCII whatever was split (no patterns used).
  local text = table.concat(out, "\n") .. "\n"
  local bytes = {}
  for i = 1, #text do
    local b = text:byte(i)
    bytes[#bytes + 1] = b < 128 and string.char(b) or ("\\" .. b)
  end
  return table.concat(bytes)
end
