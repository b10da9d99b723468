// The sandbox of SPEC section 2: which libraries a plugin gets, `require` below the plugin's
// folder, `print` to the log, no finalizers, text-only `load`.
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "lp_internal.h"

// require(name): loads NAME.lua or NAME/init.lua below the plugin's folder (upvalue 1, a
// realpath), in text mode, once; the cache is upvalue 2.
static int lp_require(lua_State *L) {
    size_t n;
    const char *name = luaL_checklstring(L, 1, &n);
    const char *root = lua_tostring(L, lua_upvalueindex(1));
    lua_settop(L, 1);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) return 1;  // cached
    lua_pop(L, 1);
    int ok = n > 0 && n < 200 && name[0] != '.' && name[n - 1] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char ch = name[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
             || ch == '_' || ch == '-' || (ch == '.' && name[i + 1] != '.');
    }
    if (!ok)
        return luaL_error(L, "module '%s' not found: require takes a dotted name of a .lua file "
                             "below the plugin's folder (letters, digits, _ - .)", name);
    char rel[256];
    for (size_t i = 0; i <= n; i++) rel[i] = name[i] == '.' ? '/' : name[i];
    const char *tries[2] = { "%s/%s.lua", "%s/%s/init.lua" };
    char path[PATH_MAX + 1], real[PATH_MAX + 1];
    size_t rootlen = strlen(root);
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, tries[k], root, rel);
        if (!realpath(path, real)) continue;
        if (strncmp(real, root, rootlen) != 0 || real[rootlen] != '/')
            return luaL_error(L, "module '%s' resolves outside the plugin's folder (%s)", name, real);
        lua_pushfstring(L, "@%s", path);
        if (luaL_loadfilex(L, real, "t") != LUA_OK) return lua_error(L);
        lua_remove(L, -2);
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushboolean(L, 1); }
        lua_pushvalue(L, 1);
        lua_pushvalue(L, -2);
        lua_rawset(L, lua_upvalueindex(2));
        return 1;
    }
    return luaL_error(L, "module '%s' not found: no %s/%s.lua nor %s/%s/init.lua (require loads "
                         ".lua files below the plugin's folder only)", name, root, rel, root, rel);
}

static int lp_refuse(lua_State *L) {
    return luaL_error(L, "%s is not available to plugins", lua_tostring(L, lua_upvalueindex(1)));
}

static void refuse(lua_State *L, int table, const char *field, const char *what) {
    lua_pushstring(L, what);
    lua_pushcclosure(L, lp_refuse, 1);
    lua_setfield(L, table, field);
}

// Runs after the libraries are open. Arguments: luapipe module, host table. Returns ctx.
static const char lp_prelude[] =
    "local luapipe, host = ...\n"
    "local type, select, tostring, error, rawget = type, select, tostring, error, rawget\n"
    "local concat = table.concat\n"
    "local real_load, real_setmetatable = load, setmetatable\n"
    "-- The record a call gets builds its fields as they are read (lp_lazy.c). What could tell\n"
    "-- makes it a plain table first, so plugins never see the difference.\n"
    "local plain = luapipe._plain\n"
    "luapipe._plain = nil\n"
    "local real_next, real_rawset, real_getmetatable = next, rawset, getmetatable\n"
    "next = function(t, ...) return real_next(plain(t), ...) end\n"
    "_ENV.rawget = function(t, ...) return rawget(plain(t), ...) end  -- the local: the real one\n"
    "rawset = function(t, ...) return real_rawset(plain(t), ...) end\n"
    "getmetatable = function(v) return real_getmetatable(plain(v)) end\n"
    "load = function(chunk, name, mode, ...)\n"
    "  if select('#', ...) > 0 then return real_load(chunk, name, 't', ...) end\n"
    "  return real_load(chunk, name, 't')\n"
    "end\n"
    "setmetatable = function(t, mt)\n"
    "  if type(t) ~= 'table' then\n"
    "    error(\"bad argument #1 to 'setmetatable' (table expected, got \" .. type(t) .. ')', 2)\n"
    "  end\n"
    "  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then\n"
    "    error('__gc metamethods are not allowed in plugins (a finalizer cannot be interrupted)', 2)\n"
    "  end\n"
    "  return real_setmetatable(plain(t), mt)\n"
    "end\n"
    "local function log(level, ...)\n"
    "  local n = select('#', ...)\n"
    "  local parts = {}\n"
    "  for i = 1, n do parts[i] = tostring((select(i, ...))) end\n"
    "  local f = host.log\n"
    "  if f then f(level, concat(parts, '\\t')) end\n"
    "end\n"
    "print = function(...) log('info', ...) end\n"
    "-- table.move, insert and remove loop in C over a length a __len metamethod can make huge,\n"
    "-- where the count hook cannot stop them: these versions loop in Lua, where it can.\n"
    "function table.move(a1, f, e, t, a2)\n"
    "  a2 = a2 == nil and a1 or a2\n"
    "  if type(a1) ~= 'table' then error(\"bad argument #1 to 'move' (table expected)\", 2) end\n"
    "  if type(a2) ~= 'table' then error(\"bad argument #5 to 'move' (table expected)\", 2) end\n"
    "  f, e, t = math.tointeger(f), math.tointeger(e), math.tointeger(t)\n"
    "  if not (f and e and t) then error(\"bad argument to 'move' (integers expected)\", 2) end\n"
    "  if e >= f then\n"
    "    if t > e or t <= f or a1 ~= a2 then\n"
    "      for i = 0, e - f do a2[t + i] = a1[f + i] end\n"
    "    else\n"
    "      for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end\n"
    "    end\n"
    "  end\n"
    "  return a2\n"
    "end\n"
    "function table.insert(t, ...)\n"
    "  local n = select('#', ...)\n"
    "  if type(t) ~= 'table' then error(\"bad argument #1 to 'insert' (table expected, got \" .. type(t) .. ')', 2) end\n"
    "  local e = #t + 1\n"
    "  if n == 1 then t[e] = ...; return end\n"
    "  if n ~= 2 then error(\"wrong number of arguments to 'insert'\", 2) end\n"
    "  local pos, v = ...\n"
    "  pos = math.tointeger(pos)\n"
    "  if not pos or pos < 1 or pos > e then error(\"bad argument #2 to 'insert' (position out of bounds)\", 2) end\n"
    "  for i = e, pos + 1, -1 do t[i] = t[i - 1] end\n"
    "  t[pos] = v\n"
    "end\n"
    "function table.remove(t, pos)\n"
    "  if type(t) ~= 'table' then error(\"bad argument #1 to 'remove' (table expected, got \" .. type(t) .. ')', 2) end\n"
    "  local size = #t\n"
    "  if pos == nil then pos = size else\n"
    "    pos = math.tointeger(pos)\n"
    "    if not pos or (size + 1 ~= pos and (pos < 1 or pos > size + 1)) then\n"
    "      if size ~= 0 or (pos ~= 0 and pos ~= size) then error(\"bad argument #2 to 'remove' (position out of bounds)\", 2) end\n"
    "    end\n"
    "  end\n"
    "  local v = t[pos]\n"
    "  for i = pos, size - 1 do t[i] = t[i + 1] end\n"
    "  if pos <= size then t[size] = nil end\n"
    "  return v\n"
    "end\n"
    "-- An error raised by the limit hook runs message handlers with hooks off (Lua disables\n"
    "-- hooks while one runs), so a plugin's handler must not run once a limit is broken.\n"
    "local real_xpcall, limit_hit = xpcall, luapipe._limit_hit\n"
    "luapipe._limit_hit = nil\n"
    "xpcall = function(f, handler, ...)\n"
    "  return real_xpcall(f, function(m)\n"
    "    if limit_hit() then return m end\n"
    "    return handler(m)\n"
    "  end, ...)\n"
    "end\n"
    "local shared = {}\n"
    "function shared:get(k) return host.shared_get(k) end\n"
    "function shared:set(k, v) return host.shared_set(k, v) end\n"
    "function shared:incr(k, n) return host.shared_incr(k, n) end\n"
    "function shared:delete(k) return host.shared_delete(k) end\n"
    "function shared:keys() return host.shared_keys() end\n"
    "local emit = luapipe._emit\n"
    "luapipe._emit = nil\n"
    "local ctx = {\n"
    "  emit = emit, shared = shared, config = luapipe.object(), plugin = {}, record_number = 0,\n"
    "  log = {\n"
    "    debug = function(...) log('debug', ...) end, info = function(...) log('info', ...) end,\n"
    "    warn = function(...) log('warn', ...) end, error = function(...) log('error', ...) end,\n"
    "  },\n"
    "}\n"
    "return host, ctx\n";

// [opts] -> [host, ctx]
static int lp_sandbox_main(lua_State *L) {
    const lp_sandbox_options *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 1);
    if (o->allow_io) luaL_requiref(L, LUA_IOLIBNAME, luaopen_io, 1);
    lua_settop(L, 0);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    lua_pushnil(L); lua_setfield(L, g, "dofile");
    lua_pushnil(L); lua_setfield(L, g, "loadfile");
    // string: no bytecode out; the shared string metatable cannot be reached or replaced.
    lua_getfield(L, g, "string");
    lua_pushnil(L); lua_setfield(L, -2, "dump");
    lp_open_patterns(L, -1);  // pattern matching that the deadline can stop
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    // os: time, clock and date only, unless granted; never exit (it would skip teardown).
    lua_getfield(L, g, "os");
    int os = lua_gettop(L);
    if (!o->allow_os) {
        lua_createtable(L, 0, 3);
        const char *keep[] = { "time", "clock", "date", "difftime" };
        for (int i = 0; i < 4; i++) {
            lua_getfield(L, os, keep[i]);
            lua_setfield(L, -2, keep[i]);
        }
        lua_setfield(L, g, "os");
    } else {
        refuse(L, os, "exit", "os.exit");
    }
    lua_pop(L, 1);
    if (o->allow_io && !o->allow_os) {  // running programs is the os grant's, not io's
        lua_getfield(L, g, "io");
        refuse(L, lua_gettop(L), "popen", "io.popen (it needs the os grant too)");
        lua_pop(L, 1);
    }
    // require: .lua files below the plugin's folder only.
    if (o->root) {
        char real[PATH_MAX + 1];
        if (!realpath(o->root, real)) return luaL_error(L, "plugin folder %s: cannot resolve", o->root);
        lua_pushstring(L, real);
        lua_newtable(L);
        lua_pushcclosure(L, lp_require, 2);
    } else {
        lua_pushliteral(L, "require");
        lua_pushcclosure(L, lp_refuse, 1);
    }
    lua_setfield(L, g, "require");
    // the luapipe module, then the Lua part of the rules.
    lp_open_luapipe(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, g, "luapipe");
    int m = lua_gettop(L);
    if (luaL_loadbufferx(L, lp_prelude, sizeof lp_prelude - 1, "=luapipe.prelude", "t") != LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, m);
    lua_newtable(L);
    lua_call(L, 2, 2);  // [g, m, host, ctx]
    return 2;
}

int lp_open_sandbox(lua_State *L, const lp_sandbox_options *opts) {
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    lua_pushcfunction(L, lp_sandbox_main);
    lua_pushlightuserdata(L, (void *)opts);
    return lua_pcall(L, 1, 2, 0);
}
