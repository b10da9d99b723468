// Tasks: a record's call run as a coroutine of its own, so that it may wait (lp_wait.c)
// without holding its thread. The host starts it, and while it waits (it yielded the wait
// mark) answers the wait and resumes it; anything else it yields is an error.
#include "lp_internal.h"

// [thread] : a new coroutine for a task, referenced in the registry (in protection: it
// allocates). [-0, +0, m]
static int new_thread_main(lua_State *L) {
    lp_task *t = lua_touserdata(L, 1);
    lua_newthread(L);
    t->thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

// The body of a task: the call, with a continuation so that it may yield.
static int task_finish(lua_State *L, int status, lua_KContext call) {
    (void)status;
    return lp_call_finish(L, (lp_call *)call);
}

static int task_main(lua_State *L) {
    lp_call *call = lua_touserdata(L, 1);
    int nargs = lp_call_prepare(L, call);
    if (nargs < 0) return 0;
    lua_callk(L, nargs, 1, (lua_KContext)call, task_finish);
    return task_finish(L, LUA_OK, (lua_KContext)call);
}

// Runs (or resumes) the task's coroutine with the call's state in the control block.
static int task_run(lua_State *L, lp_task *t, lua_State *co, int nargs) {
    lp_ctl *c = lp_ctl_get(L);
    c->task = t;
    c->call = &t->call;
    c->cur_table = t->cur_table;
    c->cur_lazy = t->cur_lazy;
    c->deadline_ns = t->deadline_ns;
    c->limit_hit = LP_LIMIT_NONE;
    // ctx.record_number is the call's own, also after a wait (the key exists: no allocation).
    if (t->call.ctx_ref != LUA_NOREF && t->call.record_number > 0
        && lua_rawgeti(L, LUA_REGISTRYINDEX, t->call.ctx_ref) == LUA_TTABLE) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->record_number_ref);
        lua_pushinteger(L, t->call.record_number);
        lua_rawset(L, -3);
    }
    lua_pop(L, 1);
    lp_use_lua_locale();
    int nres = 0;
    lp_watch_saved watch;
    lp_watch_enter(c, co, t->deadline_ns, &watch);
    int status = lua_resume(co, L, nargs, &nres);
    lp_watch_leave(c, &watch);
    t->cur_table = c->cur_table;
    t->cur_lazy = c->cur_lazy;
    c->task = NULL;
    c->call = NULL;
    c->cur_table = NULL;
    c->cur_lazy = NULL;
    c->deadline_ns = 0;
    c->rearmed = 0;  // the hook of the next coroutine that runs is set when it starts
    int late = LP_LIMIT_NONE;
    if (status == LUA_OK || status == LUA_YIELD) {
        if (atomic_load_explicit(&c->interrupt, memory_order_relaxed)) late = LP_LIMIT_INTERRUPT;
        else if (c->limit_hit == LP_LIMIT_TIME || c->limit_hit == LP_LIMIT_INTERRUPT) late = c->limit_hit;
        else if (t->deadline_ns && lp_coarse_ns(c) > t->deadline_ns) late = LP_LIMIT_TIME;
    }
    if (late != LP_LIMIT_NONE) {
        c->limit_hit = late;
        lua_settop(co, 0);
        lua_resetthread(co);
        lua_pushstring(L, late == LP_LIMIT_TIME ? "timeout: the call ran past its time limit" : "interrupted");
        return LUA_ERRRUN;
    }
    if (status == LUA_YIELD) {
        if (nres == 1 && lua_touserdata(co, -1) == (void *)&lp_wait_mark) {
            lua_pop(co, 1);
            return LUA_YIELD;
        }
        // A plain coroutine.yield at the top of the call: as in a protected call, an error.
        lua_settop(co, 0);
        lua_resetthread(co);
        lua_pushliteral(L, "attempt to yield from outside a coroutine");
        return LUA_ERRRUN;
    }
    if (status == LUA_OK) {
        lua_settop(co, 0);
        return LUA_OK;
    }
    // An error: its message with the coroutine's traceback, as the message handler gives it.
    if (status == LUA_ERRMEM && c->limit_hit == LP_LIMIT_NONE) c->limit_hit = LP_LIMIT_MEMORY;
    const char *msg = lua_tostring(co, -1);
    size_t saved = c->mem_limit;
    c->mem_limit = 0;  // the message must not fail for want of memory
    if (c->limit_hit == LP_LIMIT_TIME) msg = "timeout: the call ran past its time limit";
    else if (c->limit_hit == LP_LIMIT_INTERRUPT) msg = "interrupted";
    int pushed = 0;
    if (msg == NULL) {
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
        pushed = 1;
    }
    luaL_traceback(L, co, msg, 0);
    if (pushed) lua_remove(L, -2);
    c->mem_limit = saved;
    lua_settop(co, 0);
    lua_resetthread(co);
    return status == LUA_ERRMEM ? LUA_ERRMEM : LUA_ERRRUN;
}

int lp_task_start(lua_State *L, lp_task *t) {
    lp_ctl *c = lp_ctl_get(L);
    t->call.out.len = 0;
    t->call.emits.len = 0;
    t->call.emit_count = 0;
    t->call.result = LP_RESULT_PASS;
    t->cur_table = NULL;
    t->cur_lazy = NULL;
    if (!lua_checkstack(L, 6)) return LUA_ERRMEM;
    if (t->thread_ref == LUA_NOREF || t->thread_ref == 0) {
        lua_pushcfunction(L, new_thread_main);
        lua_pushlightuserdata(L, t);
        int status = lua_pcall(L, 1, 0, 0);
        if (status != LUA_OK) {
            c->limit_hit = LP_LIMIT_MEMORY;
            return status;
        }
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->thread_ref);
    lua_State *co = lua_tothread(L, -1);
    lua_pop(L, 1);  // the registry keeps it
    lua_sethook(co, lp_hook, LUA_MASKCOUNT, c->hook_count);
    t->deadline_ns = t->call.timeout_ns > 0 ? lp_deadline_after(c, t->call.timeout_ns) : 0;
    lua_pushcfunction(co, task_main);
    lua_pushlightuserdata(co, &t->call);
    return task_run(L, t, co, 1);
}

int lp_task_resume(lua_State *L, lp_task *t) {
    if (!lua_checkstack(L, 6)) return LUA_ERRMEM;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->thread_ref);
    lua_State *co = lua_tothread(L, -1);
    lua_pop(L, 1);
    return task_run(L, t, co, 0);
}

void lp_task_free(lua_State *L, lp_task *t) {
    if (t->thread_ref != LUA_NOREF && t->thread_ref != 0) luaL_unref(L, LUA_REGISTRYINDEX, t->thread_ref);
    t->thread_ref = LUA_NOREF;
    lp_buf_release(L, &t->call.out);
    lp_buf_release(L, &t->call.emits);
    lp_buf_release(L, &t->request);
    lp_buf_release(L, &t->reply);
}
