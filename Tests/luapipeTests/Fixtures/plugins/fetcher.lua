-- Asks an HTTP service for what each record names, with luapipe.http.request inside pcall:
-- the answer (status, JSON, body length, content type) or the error goes into the record.
local plugin = { name = "fetcher", version = "1.0.0", api = 1 }
local base
function plugin.setup(config) base = config.base end
function plugin.process(r, ctx)
  local ok, res = pcall(luapipe.http.request, {
    url = r.url or (base .. r.path), method = r.method, json = r.send, timeout = r.timeout,
    redirects = r.redirects, headers = { ["x-record"] = tostring(ctx.record_number) },
  })
  if ok then
    r.status, r.json, r.body_len = res.status, res.json, #res.body
    r.ctype = res.headers["content-type"]
  else
    r.error = tostring(res)
  end
  return r
end
return plugin
