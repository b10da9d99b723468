-- Sums order amounts per region. Every tick it logs the running totals; at the end of input
-- it emits one summary record per region, in region order.
local plugin = {
  name = "totals",
  version = "1.0.0",
  api = 1,
  description = "Sums amounts per region and emits the totals at the end",
}

local totals, counts = {}, {}

function plugin.process(record, ctx)
  local region = record.region or "unknown"
  totals[region] = (totals[region] or 0) + record.amount
  counts[region] = (counts[region] or 0) + 1
  ctx.shared:incr("orders", 1)
end

function plugin.tick(ctx)
  ctx.log.info("orders so far: " .. tostring(ctx.shared:get("orders") or 0))
end

function plugin.flush(ctx)
  local regions = {}
  for region in pairs(totals) do regions[#regions + 1] = region end
  table.sort(regions)
  for _, region in ipairs(regions) do
    ctx.emit({ summary = true, region = region, orders = counts[region], total = totals[region] })
  end
end

return plugin
