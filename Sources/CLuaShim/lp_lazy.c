// Lazy records: the record a call receives is a table whose fields are built from the tape
// when first read (or written), not all up front. A plugin that touches two of ten fields
// builds two; on the way back the untouched fields are copied from the tape as bytes.
//
// The table keeps a userdata (under a private light-userdata key) with its own copy of the
// tape, so a record a plugin keeps past its call stays whole. Anything that could see the
// difference turns the table into a plain one first ("materialize"): pairs (via __pairs),
// and the sandbox's next, rawget, rawset, getmetatable and setmetatable (see lp_sandbox.c).
// The plain table keeps the record's key order (lp_order_set_keys), for its life.
#include <string.h>
#include "lp_internal.h"

static const char lp_key_lazy = 0;  // the table's hidden field holding its lp_lazy

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

// [-0, +1, m]: a lazy table for the OBJECT at the start of `tape` (count > 0).
void lp_lazy_push(lua_State *L, const uint8_t *tape, size_t len, uint64_t serial) {
    uint32_t count = rd32(tape + 1);
    lua_createtable(L, 0, 4);
    int t = lua_gettop(L);
    uint32_t cap = 0;
    if (count > LP_LAZY_LINEAR) for (cap = 64; cap < 2 * count; cap *= 2) {}
    size_t head = sizeof(lp_lazy) + (count + cap) * sizeof(uint32_t) + count;
    lp_lazy *z = lua_newuserdatauv(L, head + len, 0);
    z->count = count;
    z->len = (uint32_t)len;
    z->serial = serial;
    z->added = 0;
    z->key_at = (uint32_t *)(z + 1);
    z->index = cap ? z->key_at + count : NULL;
    z->index_cap = cap;
    z->indexed = 0;
    z->loaded = (uint8_t *)(z->key_at + count + cap);
    z->tape = z->loaded + count;
    memcpy(z->tape, tape, len);
    memset(z->loaded, 0, count);
    size_t at = 9;
    for (uint32_t i = 0; i < count; i++) {
        if (at + 4 > len) luaL_error(L, "luapipe: corrupt record tape (a bug)");
        z->key_at[i] = (uint32_t)at;
        at = lp_tape_skip(z->tape, at + 4 + rd32(z->tape + at));
    }
    if (at > len) luaL_error(L, "luapipe: corrupt record tape (a bug)");
    lua_rawsetp(L, t, &lp_key_lazy);
    lp_ctl *c = lp_ctl_get(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->lazy_mt_ref);
    lua_setmetatable(L, t);
    if (c->call && serial == c->serial) {
        c->cur_table = lua_topointer(L, t);
        c->cur_lazy = z;
    }
}

int lp_lazy_hidden_key(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == (void *)&lp_key_lazy;
}

lp_lazy *lp_lazy_of(lua_State *L, int t) {
    if (lua_type(L, t) != LUA_TTABLE || !lua_getmetatable(L, t)) return NULL;
    int is = lua_topointer(L, -1) == lp_ctl_get(L)->lazy_mt;
    lua_pop(L, 1);
    return is ? lp_lazy_state(L, t) : NULL;
}

lp_lazy *lp_lazy_state(lua_State *L, int t) {
    if (lua_type(L, t) != LUA_TTABLE) return NULL;
    lp_ctl *c = lp_ctl_get(L);
    if (c->cur_table && lua_topointer(L, t) == c->cur_table) return c->cur_lazy;
    lua_rawgetp(L, t, &lp_key_lazy);
    lp_lazy *z = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return z;
}

static int key_is(const lp_lazy *z, uint32_t i, const char *k, size_t n) {
    const uint8_t *p = z->tape + z->key_at[i];
    return rd32(p) == n && memcmp(p + 4, k, n) == 0;
}

int lp_lazy_find(lp_lazy *z, const char *k, size_t n) {
    if (!z->index) {
        for (uint32_t i = 0; i < z->count; i++)
            if (key_is(z, i, k, n)) return (int)i;
        return -1;
    }
    uint32_t mask = z->index_cap - 1;
    if (!z->indexed) {  // the first lookup in a wide record: index every key
        memset(z->index, 0, z->index_cap * sizeof(uint32_t));
        for (uint32_t i = 0; i < z->count; i++) {
            const uint8_t *p = z->tape + z->key_at[i];
            uint32_t j = lp_hash_bytes(p + 4, rd32(p)) & mask;
            while (z->index[j]) j = (j + 1) & mask;
            z->index[j] = i + 1;
        }
        z->indexed = 1;
    }
    for (uint32_t j = lp_hash_bytes((const uint8_t *)k, n) & mask; z->index[j]; j = (j + 1) & mask)
        if (key_is(z, z->index[j] - 1, k, n)) return (int)(z->index[j] - 1);
    return -1;
}

// Pushes field i's value from the tape (nested tables keep their key order for their life).
static void push_field(lua_State *L, lp_lazy *z, uint32_t i) {
    size_t at = z->key_at[i];
    at += 4 + rd32(z->tape + at);
    lp_tape_push_at(L, z->tape, z->len, at);
}

// __index(t, k)
static int lazy_index(lua_State *L) {
    lp_lazy *z;
    if (lua_type(L, 2) != LUA_TSTRING || !(z = lp_lazy_state(L, 1))) return 0;
    size_t n;
    const char *k = lua_tolstring(L, 2, &n);
    int i = lp_lazy_find(z, k, n);
    if (i < 0 || z->loaded[i]) return 0;  // not in the record, or deleted since
    push_field(L, z, (uint32_t)i);
    z->loaded[i] = 1;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

// __newindex(t, k, v): a write to a field never read replaces the tape's value.
static int lazy_newindex(lua_State *L) {
    lp_lazy *z = lp_lazy_state(L, 1);
    if (z && lua_type(L, 2) == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, 2, &n);
        int i = lp_lazy_find(z, k, n);
        if (i >= 0) z->loaded[i] = 1;
        else z->added = 1;
    } else if (z) {
        z->added = 1;  // not a string: the writer refuses it
    }
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

void lp_lazy_materialize(lua_State *L, int t) {
    t = lua_absindex(L, t);
    lp_lazy *z = lp_lazy_of(L, t);
    if (!z) return;
    luaL_checkstack(L, 4, "record nested too deep");
    for (uint32_t i = 0; i < z->count; i++) {
        if (z->loaded[i]) continue;
        const uint8_t *p = z->tape + z->key_at[i];
        lua_pushlstring(L, (const char *)p + 4, rd32(p));
        push_field(L, z, i);
        lua_rawset(L, t);
        z->loaded[i] = 1;
    }
    lp_ctl *c = lp_ctl_get(L);
    lp_order_set_keys(L, t, z->tape, z->key_at, z->count);  // keeps the key order for its life
    if (c->cur_lazy == z) c->cur_table = NULL, c->cur_lazy = NULL;
    lua_pushnil(L);
    lua_rawsetp(L, t, &lp_key_lazy);
    lua_pushnil(L);
    lua_setmetatable(L, t);
}

static int raw_next(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

// __pairs(t)
static int lazy_pairs(lua_State *L) {
    lp_lazy_materialize(L, 1);
    lua_pushcfunction(L, raw_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

// luapipe._plain(v): v, made a plain table first if it is a lazy record.
int lp_plain(lua_State *L) {
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    lp_lazy_materialize(L, 1);
    return 1;
}

void lp_lazy_open(lua_State *L) {
    static const luaL_Reg metamethods[] = {
        { "__index", lazy_index }, { "__newindex", lazy_newindex }, { "__pairs", lazy_pairs }, { NULL, NULL },
    };
    lua_createtable(L, 0, 3);
    luaL_setfuncs(L, metamethods, 0);
    lp_ctl_get(L)->lazy_mt = lua_topointer(L, -1);  // the registry keeps it alive
    lp_ctl_get(L)->lazy_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}
