// The standard functions a plugin gets, made to respect the call's deadline inside C.
//
// The count hook runs between VM instructions only, and a call of a C function is one
// instruction: whatever a C function does before it returns is out of the hook's reach. Two
// kinds of C function can run long:
// - those that loop over a length their arguments choose, calling metamethods or functions
//   at each step (table.concat, unpack and sort; load with a reader function; string.rep
//   of empty strings loops without even allocating). They are replaced, here and in
//   lp_tablib.c, by versions of lstrlib.c / ltablib.c / lbaselib.c (Lua 5.4.4, MIT licence,
//   lua.org) that check the limits as they loop; string.rep copies by doubling.
// - the rest, whose time is bounded by the size of their arguments and so by `memory_mb`,
//   but which a loop of 1000 VM instructions could call 1000 times between two hooks. Every
//   C function of the sandbox's libraries is wrapped in lp_checked, which checks the limits
//   on entry: a C loop that calls C functions (a C metamethod, a C comparator) stops at the
//   next call too. A call hook (LUA_MASKCALL) would do the same for every Lua call as well;
//   it cost 20-30% on a loop of Lua calls where this costs nothing (see SECURITY.md).
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "lp_internal.h"

#define LP_LOAD_PIECE (64 << 10) // bytes of source the parser gets between two checks

// MARK: - Entry check of every library function

// Upvalue 1: the wrapped lua_CFunction. It runs in this closure's frame, so only functions
// without upvalues of their own are wrapped (lp_wrap_table skips the others).
static int lp_checked(lua_State *L) {
    lp_limit_check(L);
    return ((lua_CFunction)lua_touserdata(L, lua_upvalueindex(1)))(L);
}

// Wraps every C function without upvalues among the fields of the table at `idx`.
// [-0, +0, m]
static void lp_wrap_table(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 6, NULL);
    lua_pushnil(L);
    while (lua_next(L, idx)) {                        // [key, value]
        lua_CFunction f = lua_iscfunction(L, -1) ? lua_tocfunction(L, -1) : NULL;
        if (f && f != lp_checked) {
            if (lua_getupvalue(L, -1, 1)) {           // a closure: leave it
                lua_pop(L, 1);
            } else {
                lua_pushvalue(L, -2);                 // [key, value, key]
                lua_pushlightuserdata(L, (void *)f);
                lua_pushcclosure(L, lp_checked, 1);   // [key, value, key, checked]
                lua_rawset(L, idx);                   // an existing key: next() still works
            }
        }
        lua_pop(L, 1);                                // [key]
    }
}

// MARK: - string.rep

// Lua's MAXSIZE for strings built by the string library (lstrlib.c).
#define LP_MAXSIZE ((size_t)INT_MAX)

// rep(s, n [, sep]): copies by doubling what is already written, so the time is that of
// writing the result, never that of n (Lua's loop runs n times even when s and sep are
// empty, which makes `("").rep("", math.maxinteger)` loop forever).
static int lp_str_rep(lua_State *L) {
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (l + lsep < l || l + lsep > LP_MAXSIZE / (size_t)n)
        return luaL_error(L, "resulting string too large");
    size_t total = (size_t)n * l + (size_t)(n - 1) * lsep;
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, total);  // the memory limit refuses a too large one here
    size_t unit = l + lsep, filled = unit < total ? unit : total;
    memcpy(p, s, l < filled ? l : filled);
    if (filled > l) memcpy(p + l, sep, filled - l);
    while (filled < total) {  // p[0, filled) is whole units: repeat a prefix of it
        size_t k = filled < total - filled ? filled : total - filled;
        memcpy(p + filled, p, k);
        filled += k;
        lp_limit_check(L);
    }
    luaL_pushresultsize(&b, total);
    return 1;
}

// MARK: - load

// A chunk given as a string is fed to the parser in pieces, a reader function's pieces one
// by one; the limits are checked between pieces (the parser runs in C). An error raised in
// the reader makes lua_load fail with it, and a broken limit re-armed the hook, so the
// plugin's next instruction raises it again.
typedef struct lp_reader {
    const char *s;     // the rest of a string chunk; NULL: a reader function at index 1
    size_t left;
    const char *mode;  // the caller's mode: NULL when only text is wanted anyway
    int started;
} lp_reader;

// The first piece says what kind of chunk this is. Plugins never load binary chunks
// (crafted bytecode can crash the VM); a text chunk is refused when the mode says so, with
// Lua's own message.
static void check_mode(lua_State *L, const lp_reader *r, const char *p, size_t n) {
    if (n > 0 && p[0] == LUA_SIGNATURE[0]) {
        lua_pushliteral(L, "attempt to load a binary chunk (plugins may load text chunks only)");
        lua_error(L);
    }
    if (r->mode && !strchr(r->mode, 't')) {
        lua_pushfstring(L, "attempt to load a text chunk (mode is '%s')", r->mode);
        lua_error(L);
    }
}

#define RESERVEDSLOT 5

static const char *lp_read_piece(lua_State *L, void *ud, size_t *size) {
    lp_reader *r = ud;
    lp_limit_check(L);
    const char *p;
    if (r->s) {
        *size = r->left < LP_LOAD_PIECE ? r->left : LP_LOAD_PIECE;
        p = r->s;
        r->s += *size;
        r->left -= *size;
    } else {
        luaL_checkstack(L, 2, "too many nested functions");
        lua_pushvalue(L, 1);
        lua_call(L, 0, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            *size = 0;
            p = NULL;
        } else {
            if (!lua_isstring(L, -1)) luaL_error(L, "reader function must return a string");
            lua_replace(L, RESERVEDSLOT);
            p = lua_tolstring(L, RESERVEDSLOT, size);
        }
    }
    if (!r->started) {
        r->started = 1;
        check_mode(L, r, p, *size);
    }
    return *size ? p : NULL;
}

int lp_load_text(lua_State *L, const char *s, size_t len, const char *chunkname) {
    lp_reader r = { s, len, NULL, 0 };
    return lua_load(L, lp_read_piece, &r, chunkname, "t");
}

// load(chunk [, chunkname [, mode [, env]]]), as lbaselib.c's luaB_load.
static int lp_load(lua_State *L) {
    size_t l;
    const char *s = lua_tolstring(L, 1, &l);
    lp_reader r = { NULL, 0, luaL_optstring(L, 3, "bt"), 0 };
    int env = !lua_isnone(L, 4) ? 4 : 0;
    int status;
    if (s != NULL) {
        const char *chunkname = luaL_optstring(L, 2, s);
        r.s = s;
        r.left = l;
        status = lua_load(L, lp_read_piece, &r, chunkname, "t");
    } else {
        const char *chunkname = luaL_optstring(L, 2, "=(load)");
        luaL_checktype(L, 1, LUA_TFUNCTION);
        lua_settop(L, RESERVEDSLOT);
        status = lua_load(L, lp_read_piece, &r, chunkname, "t");
    }
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env != 0) {
        lua_pushvalue(L, env);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
}

// MARK: - os.date

#define LP_DATE_PIECE 4096  // format bytes per call of the real os.date

// loslib.c's C99 conversions: one-character ones, then (after "||") two-character ones.
static const char lp_date_options[] = "aAbBcCdDeFgGhHIjmMnprRStTuUVwWxXyYzZ%"
                                      "||" "EcECExEXEyEY" "OdOeOHOIOmOMOSOuOUOVOwOWOy";

// Checks every conversion of a format as loslib.c's checkoption does, with its message.
static void check_date_format(lua_State *L, const char *s, size_t len) {
    const char *se = s + len;
    while (s < se) {
        if (*s++ != '%') continue;
        size_t convlen = (size_t)(se - s);
        int oplen = 1, ok = 0;
        for (const char *o = lp_date_options; *o != '\0' && (size_t)oplen <= convlen; o += oplen) {
            if (*o == '|') oplen++;
            else if (memcmp(s, o, (size_t)oplen) == 0) { ok = 1; break; }
        }
        if (!ok) luaL_argerror(L, 1, lua_pushfstring(L, "invalid conversion specifier '%%%s'", s));
        s += oplen;
    }
}

// os.date(format, time): a format of millions of conversions (each a strftime call) runs for
// seconds in one C call. A long format is cut between conversions into pieces that the real
// os.date (upvalue 1, itself checked on entry) formats one by one, with the same time.
static int lp_os_date(lua_State *L) {
    size_t len;
    const char *s = luaL_optlstring(L, 1, "%c", &len);
    int top = lua_gettop(L);
    if (len <= LP_DATE_PIECE) {  // "*t" and every usual format
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, top, LUA_MULTRET);
        return lua_gettop(L);
    }
    int utc = s[0] == '!';
    if (utc) s++, len--;
    check_date_format(L, s, len);  // errors as loslib.c words them, for the whole format
    if (lua_isnoneornil(L, 2)) lua_pushinteger(L, (lua_Integer)time(NULL));
    else lua_pushinteger(L, luaL_checkinteger(L, 2));
    int t = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && end - i < LP_DATE_PIECE) {  // whole conversions only
            if (s[end] == '%' && end + 1 < len) end += (s[end + 1] == 'E' || s[end + 1] == 'O') ? 3 : 2;
            else end++;
        }
        if (len - end < 16) end = len;  // no short last piece (it could read "*t")
        if (end > len) end = len;
        lua_pushvalue(L, lua_upvalueindex(1));
        if (utc) lua_pushliteral(L, "!");
        lua_pushlstring(L, s + i, end - i);
        if (utc) lua_concat(L, 2);
        lua_pushvalue(L, t);
        lua_call(L, 2, 1);
        luaL_addvalue(&b);
        i = end;
    }
    luaL_pushresult(&b);
    return 1;
}

// MARK: - Raw metatables, for the prelude's guard against weak tables

// luapipe._rawmeta(t): t's metatable, even when its __metatable field hides it.
static int lp_rawmeta(lua_State *L) {
    luaL_checkany(L, 1);
    if (!lua_getmetatable(L, 1)) lua_pushnil(L);
    return 1;
}

// luapipe._setrawmeta(t, mt): sets it even when the old one is protected (the prelude checked
// what Lua's setmetatable would have).
static int lp_setrawmeta(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 0;
}

// MARK: - Installing

static void set_in(lua_State *L, int g, const char *lib, const char *name, lua_CFunction f) {
    if (lib) lua_getfield(L, g, lib);
    else lua_pushvalue(L, g);
    lua_pushcfunction(L, f);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

void lp_open_stdlib(lua_State *L) {
    luaL_checkstack(L, 8, NULL);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    set_in(L, g, "string", "rep", lp_str_rep);
    set_in(L, g, "table", "concat", lp_tab_concat);
    set_in(L, g, "table", "unpack", lp_tab_unpack);
    set_in(L, g, "table", "sort", lp_tab_sort);
    set_in(L, g, NULL, "load", lp_load);
    set_in(L, g, "luapipe", "_rawmeta", lp_rawmeta);
    set_in(L, g, "luapipe", "_setrawmeta", lp_setrawmeta);
    lua_getfield(L, g, "os");  // os.date: the real one, checked on entry, formats the pieces
    int os = lua_gettop(L);
    lp_wrap_table(L, os);
    lua_getfield(L, os, "date");
    lua_pushcclosure(L, lp_os_date, 1);
    lua_setfield(L, os, "date");
    lua_pop(L, 1);
    lp_wrap_table(L, g);
    const char *libs[] = { "string", "table", "math", "utf8", "coroutine", "os", "io", "luapipe" };
    // Error messages name a function found in the loaded libraries ("bad argument #1 to
    // 'os.date'" when no call site names it): they must hold the sandbox's tables.
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    int loaded = lua_gettop(L);
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        if (lua_getfield(L, g, libs[i]) == LUA_TTABLE) {
            lua_pushvalue(L, -1);
            lua_setfield(L, loaded, libs[i]);
            lp_wrap_table(L, -1);
            if (lua_getfield(L, -1, "json") == LUA_TTABLE) lp_wrap_table(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}
