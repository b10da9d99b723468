---@meta
-- Type definitions of the luapipe plugin API (api = 1) for lua-language-server (LuaLS).
-- `luapipe new` writes a copy next to a new plugin and a .luarc.json that points to it.

---A JSON value as a plugin sees it.
---@alias luapipe.Value nil|boolean|integer|number|string|table|lightuserdata

---A record: a JSON object. Keys are strings; `luapipe.null` stands for JSON null.
---@alias luapipe.Record table<string, luapipe.Value>

---@class luapipe.Log
---@field debug fun(...: any)
---@field info fun(...: any)
---@field warn fun(...: any)
---@field error fun(...: any)

---The run-wide key-value store. Call it with a colon: `ctx.shared:incr("n", 1)`.
---With `shared: redis://HOST:PORT/PREFIX` in the manifest it is in Redis, shared by every
---luapipe process naming that prefix, and each call waits (other records run meanwhile).
---@class luapipe.Shared
local Shared = {}
---@param key string
---@return luapipe.Value
function Shared:get(key) end
---@param key string
---@param value luapipe.Value
function Shared:set(key, value) end
---Atomic; a missing key counts as 0.
---@param key string
---@param n? integer default 1
---@return integer new value
function Shared:incr(key, n) end
---@param key string
function Shared:delete(key) end
---@return string[] sorted keys
function Shared:keys() end

---@class luapipe.PluginInfo
---@field id string the instance id from the manifest
---@field name string
---@field version string

---@class luapipe.Context
---@field config table this instance's config from the manifest
---@field log luapipe.Log
---@field shared luapipe.Shared
---@field plugin luapipe.PluginInfo
---@field record_number integer 1-based number of the input record this call stems from
---@field emit fun(record: luapipe.Record) sends an extra record downstream, before the one the call returns

---@class luapipe.Test
---@field name string
---@field config? table
---@field input luapipe.Record|luapipe.Record[]
---@field expect? luapipe.Record[] every output, flush emits included
---@field expect_error? string text the error message contains

---@class luapipe.Plugin
---@field name string [a-z0-9_-]+
---@field version string semver
---@field api integer the plugin API major version: 1
---@field description? string
---@field parallel? boolean instances keep no shared state (default false)
---@field tick_ms? integer call tick this often
---@field setup? fun(config: table, ctx: luapipe.Context)
---@field process fun(record: luapipe.Record, ctx: luapipe.Context): (luapipe.Record|false|nil)
---@field tick? fun(ctx: luapipe.Context)
---@field flush? fun(ctx: luapipe.Context)
---@field teardown? fun(ctx: luapipe.Context)
---@field tests? luapipe.Test[]

---@class luapipe.json
---@field encode fun(value: luapipe.Value): string
---@field decode fun(text: string): luapipe.Value

---@class luapipe
---@field null lightuserdata JSON null
---@field api_version integer
---@field json luapipe.json
luapipe = {}

---Marks a table as a JSON array (so an empty one stays `[]`).
---@generic T: table
---@param t? T
---@return T
function luapipe.array(t) end

---Marks a table as a JSON object (so an empty one stays `{}`).
---@generic T: table
---@param t? T
---@return T
function luapipe.object(t) end
