// ctx.shared's methods when the store lives outside the process (`shared: redis://...`): each
// is a call that waits (lp_wait.c), so a record's call yields while its round trip runs and
// the thread goes on with other records. With the in-process store the prelude keeps its
// plain host functions (lp_module.c), which answer at once.
//
// They are ctx.shared's methods themselves (no Lua wrapper), so an error names the plugin's
// line. The arguments are checked here, before the wait, with the wording of the in-process
// store's host functions, so a plugin gets the same errors from both stores.
#include "lp_internal.h"

// The method's name as messages give it ("incr").
static const char *method(int kind) {
    const char *name = lp_wait_name(kind);  // "ctx.shared:incr"
    return name + sizeof "ctx.shared:" - 1;
}

static int type_error(lua_State *L, int arg, int kind, const char *expected) {
    return luaL_error(L, "bad argument #%d to '%s' (%s expected, got %s)", arg, method(kind), expected,
                      luaL_typename(L, arg));
}

// [self, key, ...] -> [key, ...] with `n` arguments; the key must be a string (not a number
// Lua would convert). [-?, +?, v]
static void method_args(lua_State *L, int kind, int n) {
    if (lua_gettop(L) > 0) lua_remove(L, 1);  // self: called with a colon
    lua_settop(L, n);
    if (n > 0 && lua_type(L, 1) != LUA_TSTRING) type_error(L, 1, kind, "string");
}

static int shared_get(lua_State *L) {
    method_args(L, LP_WAIT_SHARED_GET, 1);
    return lp_wait_call(L, LP_WAIT_SHARED_GET);
}

static int shared_set(lua_State *L) {
    method_args(L, LP_WAIT_SHARED_SET, 2);  // [key, value]: a nil value removes the key
    return lp_wait_call(L, LP_WAIT_SHARED_SET);
}

static int shared_incr(lua_State *L) {
    method_args(L, LP_WAIT_SHARED_INCR, 2);  // [key, delta or nil]
    if (!lua_isnil(L, 2) && !lua_isinteger(L, 2)) type_error(L, 2, LP_WAIT_SHARED_INCR, "integer");
    return lp_wait_call(L, LP_WAIT_SHARED_INCR);
}

static int shared_delete(lua_State *L) {
    method_args(L, LP_WAIT_SHARED_DELETE, 1);
    return lp_wait_call(L, LP_WAIT_SHARED_DELETE);
}

static int shared_keys(lua_State *L) {
    method_args(L, LP_WAIT_SHARED_KEYS, 0);
    return lp_wait_call(L, LP_WAIT_SHARED_KEYS);
}

int lp_is_shared_wait(lua_CFunction f) {
    return f == shared_get || f == shared_set || f == shared_incr || f == shared_delete || f == shared_keys;
}

void lp_open_shared_waits(lua_State *L, int m) {
    m = lua_absindex(L, m);
    static const luaL_Reg fns[] = {
        { "get", shared_get }, { "set", shared_set }, { "incr", shared_incr },
        { "delete", shared_delete }, { "keys", shared_keys }, { NULL, NULL },
    };
    luaL_newlib(L, fns);
    lua_setfield(L, m, "_shared");  // the prelude makes it ctx.shared
}
