// Calls that wait: luapipe.sleep, luapipe.http.request, ctx.call and (with a store outside
// the process, lp_shared.c) ctx.shared's methods ask the host for something that takes time
// (OpenResty's cosocket model, for any host call).
//
// A record's call that runs as a task (a coroutine of its own, lp_task.c) yields to the host
// while it waits; the host runs other records' calls on the same thread and resumes it with
// the answer. The yield carries a private mark, so a wait inside a coroutine the plugin made
// is passed up through the plugin's coroutine.resume (which is replaced here) to the task,
// and a plain coroutine.yield at the top of `process` is still an error. Where Lua cannot
// yield (a string.gsub callback, a table.sort comparator, a metamethod called from C), the
// wait fails with a message that names the place. Calls that are not tasks block their
// thread in the host's blocking wait.
#include <stdlib.h>
#include <string.h>
#include "lp_internal.h"

const char lp_wait_mark = 0;  // the value a waiting call yields with (lp_task.c checks for it)

const char *lp_wait_name(int kind) {
    switch (kind) {
    case LP_WAIT_SLEEP: return "luapipe.sleep";
    case LP_WAIT_HTTP: return "luapipe.http.request";
    case LP_WAIT_SHARED_GET: return "ctx.shared:get";
    case LP_WAIT_SHARED_SET: return "ctx.shared:set";
    case LP_WAIT_SHARED_INCR: return "ctx.shared:incr";
    case LP_WAIT_SHARED_DELETE: return "ctx.shared:delete";
    case LP_WAIT_SHARED_KEYS: return "ctx.shared:keys";
    default: return "ctx.call";
    }
}

// Arguments 1..n as one tape ARRAY in b. [-0, +0, e]
static void args_tape(lua_State *L, lp_buf *b, int n, const char *name) {
    b->len = 0;
    uint8_t tag = LP_T_ARRAY;
    uint32_t count = (uint32_t)n, size = 0;
    lp_buf_put(L, b, &tag, 1);
    lp_buf_put(L, b, &count, 4);
    lp_buf_put(L, b, &size, 4);
    lua_pushfstring(L, "the arguments of '%s'", name);
    const char *mem_what = lua_tostring(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_pushfstring(L, "bad argument #%d to '%s'", i, name);
        lp_tape_write_as(L, i, b, lua_tostring(L, -1), mem_what);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    size = (uint32_t)(b->len - 9);
    memcpy(b->data + 5, &size, 4);
}

// Why L cannot yield: the nearest C function on its stack that called back into Lua.
// [-0, +1, m]
static void push_blocker(lua_State *L) {
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sn", &ar)) break;
        if (ar.what && strcmp(ar.what, "C") == 0) {
            if (ar.name) lua_pushfstring(L, "'%s'", ar.name);
            else lua_pushliteral(L, "a C function (a metamethod called from C, or __gc)");
            return;
        }
    }
    lua_pushliteral(L, "a function Lua cannot suspend");
}

static int cannot_wait(lua_State *L, const char *name) {
    push_blocker(L);
    return luaL_error(L, "%s cannot wait here: it was called from inside %s, which Lua cannot suspend "
                         "(a string.gsub callback, a table.sort comparator, a metamethod called from C); "
                         "wait before or after that call", name, lua_tostring(L, -1));
}

// Turns the host's answer into the wait's results, or its error. [-0, +(0|1), v]
static int wait_result(lua_State *L, int status, lp_buf *reply, int kind) {
    lp_ctl *c = lp_ctl_get(L);
    lp_buf_charge(L, reply);  // the host wrote it: count it like any buffer a call fills
    switch (status) {
    case LP_WAIT_OK:
        if (reply->len == 0) return 0;
        lp_tape_push(L, reply->data, reply->len);
        // The answer is in Lua values now: a large one gives its room back at once (the
        // record still has to be written within memory_mb), a small one is kept for reuse.
        reply->len = 0;
        if (reply->cap > LP_BUF_SLACK) lp_buf_release(L, reply);
        return 1;
    case LP_WAIT_TIMEOUT:
        // The record's deadline passed while it waited: that record fails, the state is fine.
        // The hook raises it again at every instruction, so a pcall cannot swallow it.
        c->limit_hit = LP_LIMIT_WAIT;
        c->rearmed = 1;
        lua_sethook(L, lp_hook, LUA_MASKCOUNT, 1);
        return luaL_error(L, "timeout: the call ran past its time limit while it waited (%s)", lp_wait_name(kind));
    case LP_WAIT_MEMORY:
        return lp_memory_error(L, "the answer of a wait", reply->len);
    default:
        luaL_where(L, 1);
        lua_pushlstring(L, (const char *)reply->data, reply->len);
        lua_concat(L, 2);
        reply->len = 0;
        return lua_error(L);
    }
}

static int wait_k(lua_State *L, int status, lua_KContext kind) {
    (void)status;
    lp_task *t = lp_ctl_get(L)->task;
    return wait_result(L, t->reply_status, &t->reply, (int)kind);
}

// The body of every waiting function: its arguments are on the stack.
int lp_wait_call(lua_State *L, int kind) {
    lp_limit_check(L);
    lp_ctl *c = lp_ctl_get(L);
    const char *name = lp_wait_name(kind);
    // Argument errors name ctx.shared's methods as the in-process store does ("set").
    const char *argname = kind >= LP_WAIT_SHARED_GET ? name + sizeof "ctx.shared:" - 1 : name;
    int n = lua_gettop(L);
    if (c->task) {
        if (!lua_isyieldable(L)) return cannot_wait(L, name);
        lp_task *t = c->task;
        args_tape(L, &t->request, n, argname);
        t->wait_kind = kind;
        t->reply.len = 0;
        t->reply_status = LP_WAIT_ERROR;
        lua_settop(L, 0);
        lua_pushlightuserdata(L, (void *)&lp_wait_mark);
        return lua_yieldk(L, 1, (lua_KContext)kind, wait_k);
    }
    if (!c->wait_fn) return luaL_error(L, "%s cannot wait here (no host to wait for)", name);
    args_tape(L, &c->wait_req, n, argname);
    c->wait_reply.len = 0;
    int status = c->wait_fn(c->wait_ctx, kind, c->wait_req.data, c->wait_req.len, c->deadline_ns,
                            lp_mem_room(L), &c->wait_reply);
    lp_buf_fit(L, &c->wait_req);
    return wait_result(L, status, &c->wait_reply, kind);
}

static int lp_sleep(lua_State *L) {
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds from 0 to 86400 expected");
    lua_settop(L, 1);
    return lp_wait_call(L, LP_WAIT_SLEEP);
}

static int lp_http_request(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    return lp_wait_call(L, LP_WAIT_HTTP);
}

static int lp_call_fn(lua_State *L) {
    luaL_checkstring(L, 1);
    lua_settop(L, 2);
    return lp_wait_call(L, LP_WAIT_CALL);
}

// MARK: - The plugin's own coroutines

// coroutine.resume and coroutine.wrap of lcorolib.c (Lua 5.4.4), with one change: when the
// coroutine yields because it waits (the mark), the wait goes on up to whoever resumed this
// one, and the coroutine is resumed again once the answer is in.

static lua_State *getco(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    return co;
}

// Resumes co with the `narg` values at L's top. >= 0: how many results are on L's top;
// -1: an error message is; -2: co waits (L must pass the wait up).
static int auxresume(lua_State *L, lua_State *co, int narg) {
    int status, nres;
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, narg);
    lp_ctl *c = lp_ctl_get(L);
    lua_State *was = lp_watch_switch(c, co);
    status = lua_resume(co, L, narg, &nres);
    lp_watch_switch(c, was);
    if (status == LUA_YIELD && nres == 1 && lua_touserdata(co, -1) == (void *)&lp_wait_mark) {
        lua_pop(co, 1);
        return -2;
    }
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

static int resume_k(lua_State *L, int status, lua_KContext ctx);

// co waits: yield the mark from L too (L's slot `at` keeps co), or fail when L cannot.
static int pass_wait(lua_State *L, int at, lua_KContext wrap) {
    if (!lua_isyieldable(L)) return cannot_wait(L, "a wait in a coroutine");
    lua_settop(L, at);
    lua_pushlightuserdata(L, (void *)&lp_wait_mark);
    return lua_yieldk(L, 1, wrap, resume_k);
}

static int finish_resume(lua_State *L, lua_State *co, int r) {
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
    (void)co;
}

static int finish_wrap(lua_State *L, lua_State *co, int r) {
    if (r < 0) {
        int stat = lua_status(co);
        if (stat != LUA_OK && stat != LUA_YIELD) {  // an error in the coroutine
            stat = lua_resetthread(co);  // close its to-be-closed variables
            lua_xmove(co, L, 1);
        }
        if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    return r;
}

// After a wait passed up: resume co again (its waiting function reads the answer).
static int resume_k(lua_State *L, int status, lua_KContext wrap) {
    (void)status;
    lua_State *co = wrap ? lua_tothread(L, lua_upvalueindex(1)) : lua_tothread(L, 1);
    lua_settop(L, wrap ? 0 : 1);
    int r = auxresume(L, co, 0);
    if (r == -2) return pass_wait(L, wrap ? 0 : 1, wrap);
    return wrap ? finish_wrap(L, co, r) : finish_resume(L, co, r);
}

static int lp_auxwrap(lua_State *L);
static int lp_coresume(lua_State *L);

// True when co is suspended in a wait (its own, or one it passes up from a coroutine it
// resumed): then only the call it waits for may resume it, when the answer is in. A plugin
// that kept co and resumes it from another record's call would hand it a false answer.
static int in_wait(lua_State *co) {
    lua_Debug ar;
    if (lua_status(co) != LUA_YIELD || !lua_getstack(co, 0, &ar) || !lua_checkstack(co, 2)) return 0;
    lua_getinfo(co, "f", &ar);
    lua_CFunction f = lua_tocfunction(co, -1);
    // The sandbox's entry check (lp_checked) holds the function it wraps as a light userdata.
    if (f && lua_getupvalue(co, -1, 1)) {
        if (lua_islightuserdata(co, -1)) f = (lua_CFunction)lua_touserdata(co, -1);
        lua_pop(co, 1);
    }
    lua_pop(co, 1);
    return f == lp_sleep || f == lp_http_request || f == lp_call_fn || f == lp_coresume || f == lp_auxwrap
        || lp_is_shared_wait(f);
}

#define LP_IN_WAIT_MSG "cannot resume a coroutine that waits (luapipe.sleep, luapipe.http.request, ctx.call, ctx.shared): " \
                       "it belongs to the call that made it wait"

static int lp_coresume(lua_State *L) {
    lp_limit_check(L);
    lua_State *co = getco(L);
    if (in_wait(co)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, LP_IN_WAIT_MSG);
        return 2;
    }
    int r = auxresume(L, co, lua_gettop(L) - 1);
    if (r == -2) return pass_wait(L, 1, 0);
    return finish_resume(L, co, r);
}

static int lp_auxwrap(lua_State *L) {
    lp_limit_check(L);
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    if (in_wait(co)) return luaL_error(L, LP_IN_WAIT_MSG);
    int r = auxresume(L, co, lua_gettop(L));
    if (r == -2) return pass_wait(L, 0, 1);
    return finish_wrap(L, co, r);
}

static int lp_cowrap(lua_State *L) {
    lp_limit_check(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *NL = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, NL, 1);
    lua_pushcclosure(L, lp_auxwrap, 1);
    return 1;
}

void lp_open_waits(lua_State *L, int m) {
    m = lua_absindex(L, m);
    lua_pushcfunction(L, lp_sleep);
    lua_setfield(L, m, "sleep");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lp_http_request);
    lua_setfield(L, -2, "request");
    lua_setfield(L, m, "http");
    lua_pushcfunction(L, lp_call_fn);
    lua_setfield(L, m, "_call");  // the prelude makes it ctx.call
    if (lua_getglobal(L, "coroutine") == LUA_TTABLE) {
        lua_pushcfunction(L, lp_coresume);
        lua_setfield(L, -2, "resume");
        lua_pushcfunction(L, lp_cowrap);
        lua_setfield(L, -2, "wrap");
    }
    lua_pop(L, 1);
}

void lp_set_wait(lua_State *L, lp_wait_fn fn, void *ctx) {
    lp_ctl *c = lp_ctl_get(L);
    c->wait_fn = fn;
    c->wait_ctx = ctx;
}
