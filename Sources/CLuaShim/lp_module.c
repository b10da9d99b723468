// The `luapipe` module, ctx.emit, host-function trampolines and the message handler.
#include <stdlib.h>
#include <string.h>
#include "lp_internal.h"

static lp_codec_fn lp_decode_fn, lp_encode_fn;

void lp_set_codec(lp_codec_fn decode, lp_codec_fn encode) {
    lp_decode_fn = decode;
    lp_encode_fn = encode;
}

// A traceback for every error (lua.c `msghandler`). An error value with a __tostring
// metamethod is converted by calling it: if that errors or runs away, Lua reports
// LUA_ERRERR, and the hook still fires inside it.
int lp_msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

// Scratch buffers in a userdata so they are freed with the state, also after an error.
typedef struct scratch { lp_buf a, b; } scratch;

static int scratch_gc(lua_State *L) {
    scratch *s = lua_touserdata(L, 1);
    lp_buf_free(&s->a);
    lp_buf_free(&s->b);
    return 0;
}

static const char lp_key_scratch = 0;

static scratch *get_scratch(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lp_key_scratch);
    scratch *s = lua_touserdata(L, -1);
    lua_pop(L, 1);  // anchored in the registry
    s->a.len = 0;
    s->b.len = 0;
    return s;
}

// ctx.emit(record)
static int lp_emit(lua_State *L) {
    lp_ctl *c = lp_ctl_get(L);
    if (!c->call || !c->call->allow_emit)
        return luaL_error(L, "ctx.emit can only be called from process, tick or flush");
    luaL_checktype(L, 1, LUA_TTABLE);
    scratch *s = get_scratch(L);
    lp_tape_write(L, 1, &s->a, "emitted record");
    if (s->a.data[0] != LP_T_OBJECT)
        return luaL_error(L, "ctx.emit expects a record (a table with string keys), not a list");
    // Emitted records live outside the Lua heap until the call ends: they count against the
    // state's memory limit too, so a plugin cannot flood the host with them.
    if (c->mem_limit && c->call->emits.len + s->a.len + c->mem_used > c->mem_limit) {
        c->limit_hit = LP_LIMIT_MEMORY;
        return luaL_error(L, "not enough memory: emitted records exceed the plugin's memory limit");
    }
    lp_buf_put(L, &c->call->emits, s->a.data, s->a.len);
    c->call->emit_count++;
    return 0;
}

// True once the current call broke a limit (used by the xpcall wrapper of the prelude).
static int lp_limit_hit_fn(lua_State *L) {
    lua_pushboolean(L, lp_ctl_get(L)->limit_hit != LP_LIMIT_NONE);
    return 1;
}

static int lp_mark(lua_State *L, const void *key) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    else luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lp_lazy_materialize(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    lua_setmetatable(L, 1);
    return 1;
}
static int lp_array(lua_State *L) { return lp_mark(L, &lp_key_array_mt); }
static int lp_object(lua_State *L) { return lp_mark(L, &lp_key_object_mt); }

static int lp_json_decode(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    scratch *sc = get_scratch(L);
    if (!lp_decode_fn) return luaL_error(L, "luapipe.json is not available");
    if (lp_decode_fn((const uint8_t *)s, n, &sc->a) != 0) {
        lua_pushlstring(L, (const char *)sc->a.data, sc->a.len);
        return luaL_error(L, "luapipe.json.decode: %s", lua_tostring(L, -1));
    }
    lp_tape_push(L, sc->a.data, sc->a.len);
    return 1;
}

static int lp_json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    scratch *sc = get_scratch(L);
    if (!lp_encode_fn) return luaL_error(L, "luapipe.json is not available");
    lp_tape_write(L, 1, &sc->a, "luapipe.json.encode");
    if (lp_encode_fn(sc->a.data, sc->a.len, &sc->b) != 0) {
        lua_pushlstring(L, (const char *)sc->b.data, sc->b.len);
        return luaL_error(L, "luapipe.json.encode: %s", lua_tostring(L, -1));
    }
    lua_pushlstring(L, (const char *)sc->b.data, sc->b.len);
    return 1;
}

// Calls a Swift host function: arguments go over as one tape array, the result comes back as
// a tape; an error is raised here, after the Swift frame has returned.
static int lp_host_trampoline(lua_State *L) {
    lp_host_fn fn = (lp_host_fn)lua_touserdata(L, lua_upvalueindex(1));
    void *ctx = lua_touserdata(L, lua_upvalueindex(2));
    const char *name = lua_tostring(L, lua_upvalueindex(3));
    int n = lua_gettop(L);
    scratch *sc = get_scratch(L);
    uint8_t tag = LP_T_ARRAY;
    uint32_t count = (uint32_t)n, size = 0;
    lp_buf_put(L, &sc->a, &tag, 1);
    lp_buf_put(L, &sc->a, &count, 4);
    lp_buf_put(L, &sc->a, &size, 4);
    for (int i = 1; i <= n; i++) {
        lua_pushfstring(L, "bad argument #%d to '%s'", i, name);
        lp_tape_write(L, i, &sc->a, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    size = (uint32_t)(sc->a.len - 9);
    memcpy(sc->a.data + 5, &size, 4);
    int rc = fn(ctx, sc->a.data, sc->a.len, &sc->b);
    if (rc != 0) {
        luaL_where(L, 1);
        lua_pushlstring(L, (const char *)sc->b.data, sc->b.len);
        lua_concat(L, 2);
        return lua_error(L);
    }
    if (sc->b.len == 0) return 0;
    lp_tape_push(L, sc->b.data, sc->b.len);
    return 1;
}

// [table_ref, name, fn, ctx] -> []
static int lp_set_host_main(lua_State *L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, (lua_Integer)lua_tointeger(L, 1));
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 4);
    const char *name = lua_tostring(L, 2);  // "shared_incr" is called as "incr" in messages
    lua_pushstring(L, strncmp(name, "shared_", 7) == 0 ? name + 7 : name);
    lua_pushcclosure(L, lp_host_trampoline, 3);  // [t, name, closure]
    lua_rawset(L, -3);
    return 0;
}

int lp_set_host(lua_State *L, int table_ref, const char *name, lp_host_fn fn, void *ctx) {
    if (!lua_checkstack(L, 8)) return LUA_ERRMEM;
    lp_ctl *c = lp_ctl_get(L);
    size_t limit = c->mem_limit;
    c->mem_limit = 0;  // pushstring allocates before protection: see lp_ref
    lua_pushcfunction(L, lp_set_host_main);
    lua_pushinteger(L, table_ref);
    lua_pushstring(L, name);
    lua_pushlightuserdata(L, (void *)fn);
    lua_pushlightuserdata(L, ctx);
    c->mem_limit = limit;
    return lua_pcall(L, 4, 0, 0);
}

// [table_ref, name, tape, len] -> []
static int lp_set_value_main(lua_State *L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, (lua_Integer)lua_tointeger(L, 1));
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_pushvalue(L, 2);
    lp_tape_push(L, lua_touserdata(L, 3), (size_t)lua_tointeger(L, 4));
    lua_rawset(L, -3);
    return 0;
}

int lp_set_value(lua_State *L, int table_ref, const char *name, const uint8_t *tape, size_t len) {
    if (!lua_checkstack(L, 8)) return LUA_ERRMEM;
    lp_ctl *c = lp_ctl_get(L);
    size_t limit = c->mem_limit;
    c->mem_limit = 0;
    lua_pushcfunction(L, lp_set_value_main);
    lua_pushinteger(L, table_ref);
    lua_pushstring(L, name);
    lua_pushlightuserdata(L, (void *)tape);
    lua_pushinteger(L, (lua_Integer)len);
    c->mem_limit = limit;
    return lua_pcall(L, 4, 0, 0);
}

// pushes the luapipe module table
int lp_open_luapipe(lua_State *L) {
    lua_newtable(L);                       // array marker metatable
    lua_pushliteral(L, "luapipe.array");
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, "luapipe.array");
    lua_setfield(L, -2, "__metatable");
    lp_ctl_get(L)->array_mt = lua_topointer(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lp_key_array_mt);
    lua_newtable(L);
    lua_pushliteral(L, "luapipe.object");
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, "luapipe.object");
    lua_setfield(L, -2, "__metatable");
    lp_ctl_get(L)->object_mt = lua_topointer(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lp_key_object_mt);
    scratch *s = lua_newuserdatauv(L, sizeof(scratch), 0);
    memset(s, 0, sizeof *s);
    lua_newtable(L);
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lp_key_scratch);
    lp_anchor_reset(L);
    lp_lazy_open(L);
    lua_pushliteral(L, "record_number");
    lp_ctl_get(L)->record_number_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_createtable(L, 0, 6);
    lua_pushlightuserdata(L, lp_null());
    lua_setfield(L, -2, "null");
    lua_pushcfunction(L, lp_array);
    lua_setfield(L, -2, "array");
    lua_pushcfunction(L, lp_object);
    lua_setfield(L, -2, "object");
    lua_pushinteger(L, 1);
    lua_setfield(L, -2, "api_version");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, lp_json_encode);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, lp_json_decode);
    lua_setfield(L, -2, "decode");
    lua_setfield(L, -2, "json");
    lua_pushcfunction(L, lp_emit);
    lua_setfield(L, -2, "_emit");
    lua_pushcfunction(L, lp_limit_hit_fn);
    lua_setfield(L, -2, "_limit_hit");
    lua_pushcfunction(L, lp_plain);
    lua_setfield(L, -2, "_plain");
    return 1;
}
