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
// What they hold counts against the state's memory limit (lp_buf_grow); one that grew past
// LP_BUF_KEEP is freed after its use, so a large value does not stay allocated (and counted)
// for the state's life.
typedef struct scratch { lp_buf a, b; } scratch;

static int scratch_gc(lua_State *L) {
    scratch *s = lua_touserdata(L, 1);
    lp_buf_free(&s->a);  // the state is closing: its count no longer matters
    lp_buf_free(&s->b);
    return 0;
}

static const char lp_key_scratch = 0;

static void trim(lua_State *L, lp_buf *b) {
    if (b->cap > LP_BUF_KEEP) lp_buf_release(L, b);
    b->len = 0;
}

static scratch *scratch_of(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lp_key_scratch);
    scratch *s = lua_touserdata(L, -1);
    lua_pop(L, 1);  // anchored in the registry
    return s;
}

// The scratch buffers, empty. Trims them first: a use that raised did not trim after itself.
static scratch *get_scratch(lua_State *L) {
    scratch *s = scratch_of(L);
    trim(L, &s->a);
    trim(L, &s->b);
    return s;
}

static void scratch_done(lua_State *L, scratch *s) {
    trim(L, &s->a);
    trim(L, &s->b);
}

void lp_call_trim(lua_State *L, lp_call *call) {
    if (call->out.cap > LP_BUF_KEEP) lp_buf_release(L, &call->out);
    if (call->emits.cap > LP_BUF_KEEP) lp_buf_release(L, &call->emits);
    scratch *s = scratch_of(L);
    if (s) scratch_done(L, s);
}

// What a host function or codec may build into b: what is left of the limit, plus what b
// holds already.
static size_t host_budget(lua_State *L, const lp_buf *b) {
    size_t room = lp_mem_room(L);
    return room == SIZE_MAX ? SIZE_MAX : room + b->charged;
}

// After a Swift host function or codec returned into b: counts what it allocated, and
// raises its error (a memory error marks the breach). [-0, +0, v]
static void host_returned(lua_State *L, int rc, lp_buf *b, const char *prefix) {
    lp_buf_charge(L, b);
    if (rc == LP_HOST_OK) return;
    // The value it was given is done with: room for the error, and nothing large kept.
    if (rc == LP_HOST_MEMORY) {
        lp_ctl_get(L)->limit_hit = LP_LIMIT_MEMORY;
        lp_buf_release(L, &scratch_of(L)->a);
    } else {
        trim(L, &scratch_of(L)->a);
    }
    luaL_where(L, 1);
    lua_pushstring(L, prefix);
    lua_pushlstring(L, (const char *)b->data, b->len);
    lua_concat(L, 3);
    lua_error(L);
}

// ctx.emit(record)
static int lp_emit(lua_State *L) {
    lp_ctl *c = lp_ctl_get(L);
    if (!c->call || !c->call->allow_emit)
        return luaL_error(L, "ctx.emit can only be called from process, tick or flush");
    luaL_checktype(L, 1, LUA_TTABLE);
    scratch *s = get_scratch(L);
    lp_tape_write_as(L, 1, &s->a, "emitted record", "the emitted record");
    if (s->a.data[0] != LP_T_OBJECT)
        return luaL_error(L, "ctx.emit expects a record (a table with string keys), not a list");
    // Emitted records live outside the Lua heap until the call ends: they count against the
    // state's memory limit too, so a plugin cannot flood the host with them.
    if (lp_buf_try_grow(L, &c->call->emits, s->a.len) != 0) {
        size_t need = c->call->emits.len + s->a.len;
        lp_buf_release(L, &s->a);  // the records emitted before stay
        return lp_memory_error(L, "the buffer of emitted records", need);
    }
    lp_buf_put(L, &c->call->emits, s->a.data, s->a.len);
    c->call->emit_count++;
    scratch_done(L, s);
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

// luapipe.json.decode(text): the C reader writes the tape straight into a scratch buffer,
// bounded by what is left of the memory limit; the Swift reader runs only to word an error.
static int lp_json_decode(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (!lp_decode_fn) return luaL_error(L, "luapipe.json is not available");
    scratch *sc = get_scratch(L);
    size_t cap = lp_json_tape_bound(n), room = host_budget(L, &sc->a);
    if (cap > room) cap = room > 64 ? room : 64;
    lp_buf_grow(L, &sc->a, cap, "luapipe.json.decode's value");
    long r = lp_json_parse_into((const uint8_t *)s, n, sc->a.data, sc->a.cap, 0);
    if (r == LP_JSON_FULL) {
        size_t tried = sc->a.cap;
        lp_buf_release(L, &sc->a);
        return lp_memory_error(L, "luapipe.json.decode's value", tried);
    }
    if (r < 0) {
        int rc = lp_decode_fn((const uint8_t *)s, n, host_budget(L, &sc->b), &sc->b);
        if (rc == LP_HOST_OK) {  // the readers disagree (a bug): the Swift one is the reference
            lp_buf_charge(L, &sc->b);
            lp_tape_push(L, sc->b.data, sc->b.len);
            scratch_done(L, sc);
            return 1;
        }
        host_returned(L, rc, &sc->b, "luapipe.json.decode: ");
    }
    sc->a.len = (size_t)r;
    lp_buf_fit(L, &sc->a);  // the bound is 9 bytes per byte of text: give back what was not used
    lp_tape_push(L, sc->a.data, sc->a.len);
    scratch_done(L, sc);
    return 1;
}

static int lp_json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    scratch *sc = get_scratch(L);
    if (!lp_encode_fn) return luaL_error(L, "luapipe.json is not available");
    lp_tape_write_as(L, 1, &sc->a, "luapipe.json.encode", "luapipe.json.encode's value");
    int rc = lp_encode_fn(sc->a.data, sc->a.len, host_budget(L, &sc->b), &sc->b);
    host_returned(L, rc, &sc->b, "luapipe.json.encode: ");
    trim(L, &sc->a);      // the tape is done with: room for the string
    lp_buf_fit(L, &sc->b);
    lua_pushlstring(L, (const char *)sc->b.data, sc->b.len);
    scratch_done(L, sc);
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
    lua_pushfstring(L, "the arguments of '%s'", name);
    const char *mem_what = lua_tostring(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_pushfstring(L, "bad argument #%d to '%s'", i, name);
        lp_tape_write_as(L, i, &sc->a, lua_tostring(L, -1), mem_what);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    size = (uint32_t)(sc->a.len - 9);
    memcpy(sc->a.data + 5, &size, 4);
    int rc = fn(ctx, sc->a.data, sc->a.len, host_budget(L, &sc->b), &sc->b);
    host_returned(L, rc, &sc->b, "");
    if (sc->b.len == 0) { scratch_done(L, sc); return 0; }
    trim(L, &sc->a);
    lp_tape_push(L, sc->b.data, sc->b.len);
    scratch_done(L, sc);
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
