// table.concat, unpack and sort for plugins: ltablib.c of Lua 5.4.4 (MIT licence, lua.org)
// with the call's limits checked every LP_CHECK_EVERY elements or comparisons. Each step can
// run a metamethod or a comparator in C, where the count hook never fires, and a sort of a
// few million numbers takes seconds with no metamethod at all (see lp_stdlib.c).
#include <limits.h>
#include <string.h>
#include <time.h>
#include "lp_internal.h"

#define LP_CHECK_EVERY 1024  // elements or comparisons between two limit checks

#define TAB_R 1
#define TAB_W 2
#define TAB_L 4
#define TAB_RW (TAB_R | TAB_W)

static int checkfield(lua_State *L, const char *key, int n) {
    lua_pushstring(L, key);
    return lua_rawget(L, -n) != LUA_TNIL;
}

// `arg` is a table or has a metatable with the metamethods `what` needs.
static void checktab(lua_State *L, int arg, int what) {
    if (lua_type(L, arg) != LUA_TTABLE) {
        int n = 1;
        if (lua_getmetatable(L, arg) && (!(what & TAB_R) || checkfield(L, "__index", ++n))
            && (!(what & TAB_W) || checkfield(L, "__newindex", ++n))
            && (!(what & TAB_L) || checkfield(L, "__len", ++n))) {
            lua_pop(L, n);
        } else {
            luaL_checktype(L, arg, LUA_TTABLE);  // raises
        }
    }
}

static lua_Integer aux_getn(lua_State *L, int n, int w) {
    checktab(L, n, w | TAB_L);
    return luaL_len(L, n);
}

static void addfield(lua_State *L, luaL_Buffer *b, lua_Integer i) {
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid value (%s) at index %I in table for 'concat'", luaL_typename(L, -1),
                   (LUAI_UACINT)i);
    luaL_addvalue(b);
}

int lp_tab_concat(lua_State *L) {
    luaL_Buffer b;
    lua_Integer last = aux_getn(L, 1, TAB_R);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    luaL_buffinit(L, &b);
    unsigned steps = 0;
    for (; i < last; i++) {  // each step may run a metamethod in C: check now and then
        addfield(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
        if (++steps % LP_CHECK_EVERY == 0) lp_limit_check(L);
    }
    if (i == last) addfield(L, &b, i);
    luaL_pushresult(&b);
    return 1;
}

int lp_tab_unpack(lua_State *L) {
    lua_Unsigned n;
    lua_Integer i = luaL_optinteger(L, 2, 1);
    lua_Integer e = luaL_opt(L, luaL_checkinteger, 3, luaL_len(L, 1));
    if (i > e) return 0;
    n = (lua_Unsigned)e - i;
    if (n >= (unsigned int)INT_MAX || !lua_checkstack(L, (int)(++n)))
        return luaL_error(L, "too many results to unpack");
    unsigned steps = 0;
    for (; i < e; i++) {
        lua_geti(L, 1, i);
        if (++steps % LP_CHECK_EVERY == 0) lp_limit_check(L);
    }
    lua_geti(L, 1, e);
    return (int)n;
}

typedef unsigned int IdxT;
#define RANLIMIT 100u

// "Random" pivots for large unbalanced partitions, as ltablib.c makes them (clock and time).
static unsigned int l_randomizePivot(void) {
    clock_t c = clock();
    time_t t = time(NULL);
    unsigned int buff[sizeof c / sizeof(unsigned) + sizeof t / sizeof(unsigned)];
    unsigned int rnd = 0;
    memcpy(buff, &c, sizeof c);
    memcpy((char *)buff + sizeof c, &t, sizeof t);
    for (size_t i = 0; i < sizeof buff / sizeof buff[0]; i++) rnd += buff[i];
    return rnd;
}

typedef struct { unsigned steps; } SortState;

static void set2(lua_State *L, IdxT i, IdxT j) {
    lua_seti(L, 1, i);
    lua_seti(L, 1, j);
}

// a < b in the sort's order. Counts comparisons: a sort of a few million elements takes
// seconds even with the default order, and a C comparator runs no VM instruction at all.
static int sort_comp(lua_State *L, SortState *st, int a, int b) {
    // One comparison of long strings can take milliseconds (Lua compares them with strcoll
    // piece by piece between NUL bytes): then every comparison checks the limits.
    size_t la = 0, lb = 0;
    if (lua_type(L, a) == LUA_TSTRING && lua_type(L, b) == LUA_TSTRING) {
        lua_tolstring(L, a, &la);
        lua_tolstring(L, b, &lb);
    }
    if (++st->steps % LP_CHECK_EVERY == 0 || la > 4096 || lb > 4096) lp_limit_check(L);
    if (lua_isnil(L, 2)) return lua_compare(L, a, b, LUA_OPLT);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, a - 1);
    lua_pushvalue(L, b - 2);
    lua_call(L, 2, 1);
    int res = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return res;
}

static IdxT partition(lua_State *L, SortState *st, IdxT lo, IdxT up) {
    IdxT i = lo, j = up - 1;
    for (;;) {
        while ((void)lua_geti(L, 1, ++i), sort_comp(L, st, -1, -2)) {
            if (i == up - 1) luaL_error(L, "invalid order function for sorting");
            lua_pop(L, 1);
        }
        while ((void)lua_geti(L, 1, --j), sort_comp(L, st, -3, -1)) {
            if (j < i) luaL_error(L, "invalid order function for sorting");
            lua_pop(L, 1);
        }
        if (j < i) {
            lua_pop(L, 1);
            set2(L, up - 1, i);
            return i;
        }
        set2(L, i, j);
    }
}

static IdxT choosePivot(IdxT lo, IdxT up, unsigned int rnd) {
    IdxT r4 = (up - lo) / 4;
    return rnd % (r4 * 2) + (lo + r4);
}

static void auxsort(lua_State *L, SortState *st, IdxT lo, IdxT up, unsigned int rnd) {
    while (lo < up) {
        IdxT p, n;
        lua_geti(L, 1, lo);
        lua_geti(L, 1, up);
        if (sort_comp(L, st, -1, -2)) set2(L, lo, up);
        else lua_pop(L, 2);
        if (up - lo == 1) return;
        if (up - lo < RANLIMIT || rnd == 0) p = (lo + up) / 2;
        else p = choosePivot(lo, up, rnd);
        lua_geti(L, 1, p);
        lua_geti(L, 1, lo);
        if (sort_comp(L, st, -2, -1)) {
            set2(L, p, lo);
        } else {
            lua_pop(L, 1);
            lua_geti(L, 1, up);
            if (sort_comp(L, st, -1, -2)) set2(L, p, up);
            else lua_pop(L, 2);
        }
        if (up - lo == 2) return;
        lua_geti(L, 1, p);
        lua_pushvalue(L, -1);
        lua_geti(L, 1, up - 1);
        set2(L, p, up - 1);
        p = partition(L, st, lo, up);
        if (p - lo < up - p) {
            auxsort(L, st, lo, p - 1, rnd);
            n = p - lo;
            lo = p + 1;
        } else {
            auxsort(L, st, p + 1, up, rnd);
            n = up - p;
            up = p - 1;
        }
        if ((up - lo) / 128 > n) rnd = l_randomizePivot();
    }
}

int lp_tab_sort(lua_State *L) {
    lua_Integer n = aux_getn(L, 1, TAB_RW);
    if (n > 1) {
        luaL_argcheck(L, n < INT_MAX, 1, "array too big");
        if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_settop(L, 2);
        SortState st = { 0 };
        auxsort(L, &st, 1, (IdxT)n, 0);
    }
    return 0;
}
