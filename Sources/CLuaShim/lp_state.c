// State creation, the counting allocator, the interrupt/deadline hook and protected calls.
#define _GNU_SOURCE  // uselocale, newlocale
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lp_internal.h"

// Lua compares strings with strcoll. Under the process's locale (luapipe runs in C.UTF-8 or
// the user's) that took 13 ms per 15 MB, against 2 ms for byte order, and 1000 comparisons
// run between two count hooks; the order also depended on the machine. Plugins compare
// bytes, as lua5.4 does (it never calls setlocale): a thread that runs a call gets
// LC_COLLATE "C". NULL (no change) if the locale cannot be made.
static locale_t lua_locale;
static pthread_once_t lua_locale_once = PTHREAD_ONCE_INIT;
static void make_lua_locale(void) {
    locale_t base = duplocale(LC_GLOBAL_LOCALE);
    if (base == (locale_t)0) return;
    lua_locale = newlocale(LC_COLLATE_MASK, "C", base);
    if (lua_locale == (locale_t)0) freelocale(base);
}
// Once per thread, and left in place: only strcoll and strxfrm read LC_COLLATE, and a thread
// that runs Lua wants byte order for every state (uselocale at each call cost ~15 ns).
static _Thread_local int lua_locale_used;
void lp_use_lua_locale(void) {
    if (lua_locale_used) return;
    lua_locale_used = 1;
    pthread_once(&lua_locale_once, make_lua_locale);
    if (lua_locale) uselocale(lua_locale);
}

int64_t lp_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// A call's deadline, from the coarse clock (a fifth of the precise one's cost, read at every
// call): it lags by less than its resolution, which is added, so a deadline is never early
// and at most one tick (1-4 ms) late. The hook compares it with the precise clock.
int64_t lp_deadline_after(lp_ctl *c, int64_t timeout_ns) {
    struct timespec ts;
    if (c->coarse_res_ns <= 0 || clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return lp_now_ns() + timeout_ns;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + c->coarse_res_ns + timeout_ns;
}

// The allocator enforces the per-state memory limit. Lua runs an emergency collection and
// retries before it raises "not enough memory", so a refusal here is not yet an error.
//
// It also keeps freed blocks of up to 512 bytes for reuse, per 16-byte class: each call
// makes a record table, its hash part, a userdata and strings, and the collector frees them
// in bursts that overflow malloc's per-thread cache (a profile of P1 had malloc and free at
// 6% of the run under this allocator). Lua passes a block's size when it frees it, so the
// blocks need no header. A state is used by one thread at a time, so no lock either.
static inline size_t pool_class(size_t n) { return (n + 15) >> 4; }

static void *pool_get(lp_ctl *c, size_t n) {
    size_t k = pool_class(n);
    if (k > LP_POOL_CLASSES) return malloc(n);
    void *p = c->pool[k];
    if (p) {
        c->pool[k] = *(void **)p;
        c->pool_bytes -= k << 4;
        return p;
    }
    return malloc(k << 4);
}

static void pool_put(lp_ctl *c, void *p, size_t n) {
    size_t k = pool_class(n);
    if (k > LP_POOL_CLASSES || c->pool_bytes + (k << 4) > LP_POOL_MAX_BYTES) { free(p); return; }
    *(void **)p = c->pool[k];
    c->pool[k] = p;
    c->pool_bytes += k << 4;
}

static void pool_drain(lp_ctl *c) {
    for (size_t k = 0; k <= LP_POOL_CLASSES; k++) {
        while (c->pool[k]) {
            void *p = c->pool[k];
            c->pool[k] = *(void **)p;
            free(p);
        }
    }
    c->pool_bytes = 0;
}

static void *lp_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    lp_ctl *c = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        c->mem_used -= old;
        if (ptr) pool_put(c, ptr, old);
        return NULL;
    }
    if (c->mem_limit && nsize > old && c->mem_used - old + nsize > c->mem_limit)
        return NULL;
    // A large block after the deadline is refused: VM instructions that build long strings
    // (`..`) run no hook and call nothing, and 1000 of them between two count hooks took 18 s
    // over a 15 MB string. Lua raises a memory error, which only a library function (checked
    // on entry) can catch; pcall_at reports it as the timeout it is.
    if (nsize >= LP_BIG_BLOCK && nsize > old && (c->deadline_ns || c->interrupt)) {
        int why = lp_limit_due(c);
        if (why != LP_LIMIT_NONE) {
            c->limit_hit = why;
            return NULL;
        }
    }
    void *p;
    if (!ptr) {
        p = pool_get(c, nsize);
    } else if (pool_class(old) > LP_POOL_CLASSES && pool_class(nsize) > LP_POOL_CLASSES) {
        p = realloc(ptr, nsize);  // large to large
    } else if (pool_class(old) == pool_class(nsize)) {
        p = ptr;                  // the block already has room
    } else {
        p = pool_get(c, nsize);
        if (p) {
            memcpy(p, ptr, old < nsize ? old : nsize);
            pool_put(c, ptr, old);
        }
    }
    if (p) c->mem_used = c->mem_used - old + nsize;
    return p;
}

// Polls the interrupt flag and the deadline. When either fired it re-arms itself to run at
// every instruction, so a script's pcall (or coroutine.resume) that swallows the error meets
// it again at once, and the error reaches the host (Redis `luaMaskCountHook` does the same).
void lp_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lp_ctl *c = lp_ctl_get(L);
    if (c->limit_hit == LP_LIMIT_WAIT) lp_limit_raise(L, LP_LIMIT_WAIT);  // caught by a pcall: again
    int why = LP_LIMIT_NONE;
    if (atomic_load_explicit(&c->interrupt, memory_order_relaxed)) why = LP_LIMIT_INTERRUPT;
    else if (c->deadline_ns && lp_now_ns() > c->deadline_ns) why = LP_LIMIT_TIME;
    if (why == LP_LIMIT_NONE) {
        // Armed by the watchdog (lp_watchdog.c) for a limit not due after all: back to normal.
        if (!c->rearmed && lua_gethookcount(L) != c->hook_count)
            lua_sethook(L, lp_hook, LUA_MASKCOUNT, c->hook_count);
        return;
    }
    lp_limit_raise(L, why);
}

int lp_limit_raise(lua_State *L, int why) {
    lp_ctl *c = lp_ctl_get(L);
    c->limit_hit = why;
    c->rearmed = 1;
    lua_sethook(L, lp_hook, LUA_MASKCOUNT, 1);
    if (why == LP_LIMIT_TIME) return luaL_error(L, "timeout: the call ran past its time limit");
    if (why == LP_LIMIT_WAIT) return luaL_error(L, "timeout: the call ran past its time limit while it waited");
    return luaL_error(L, "interrupted");
}

static int lp_panic(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "luapipe: unprotected Lua error (a bug in luapipe): %s\n", msg ? msg : "?");
    abort();
}

lua_State *lp_newstate(size_t mem_limit) {
    lp_ctl *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    atomic_init(&c->interrupt, 0);
    c->hook_count = LP_HOOK_COUNT;
    struct timespec res;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0) c->coarse_res_ns = res.tv_nsec;
    lua_State *L = lua_newstate(lp_alloc, c);
    if (!L) { pool_drain(c); free(c); return NULL; }
    *(lp_ctl **)lua_getextraspace(L) = c;  // coroutines get a copy when they are made
    c->mem_limit = mem_limit;
    lua_atpanic(L, lp_panic);
    lua_sethook(L, lp_hook, LUA_MASKCOUNT, c->hook_count);
    // Records are tables that live for one call: the generational collector suits them
    // (see docs/performance.md for the measurement).
    lua_gc(L, LUA_GCGEN, 0, 0);
    lp_watch_register(c);
    return L;
}

void lp_close(lua_State *L) {
    if (!L) return;
    lp_ctl *c = lp_ctl_get(L);
    lp_watch_unregister(c);
    c->mem_limit = 0;  // closing must not fail for want of memory
    lua_close(L);
    lp_buf_free(&c->wait_req);
    lp_buf_free(&c->wait_reply);
    pool_drain(c);
    free(c);
}

lp_ctl *lp_ctl_of(lua_State *L) { return lp_ctl_get(L); }
void lp_ctl_interrupt(lp_ctl *c) { atomic_store(&c->interrupt, 1); }
void lp_ctl_clear_interrupt(lp_ctl *c) { atomic_store(&c->interrupt, 0); }
size_t lp_mem_used(lua_State *L) { return lp_ctl_get(L)->mem_used; }
size_t lp_mem_limit(lua_State *L) { return lp_ctl_get(L)->mem_limit; }
void lp_set_mem_limit(lua_State *L, size_t limit) { lp_ctl_get(L)->mem_limit = limit; }
int lp_limit_hit(lua_State *L) { return lp_ctl_get(L)->limit_hit; }
void lp_set_hook_count(lua_State *L, int count) {
    lp_ctl *c = lp_ctl_get(L);
    c->hook_count = count > 0 ? count : LP_HOOK_COUNT;
    lua_sethook(L, lp_hook, LUA_MASKCOUNT, c->hook_count);
}

// Runs the function below `nargs` arguments at the top, with the message handler just below
// it (at `base`), a deadline and memory accounting; classifies a failure as a broken limit
// where it was one. Leaves the results (or the message) where the handler was.
static int pcall_at(lua_State *L, int base, int nargs, int nresults, int64_t timeout_ns) {
    lp_ctl *c = lp_ctl_get(L);
    c->limit_hit = LP_LIMIT_NONE;
    c->deadline_ns = timeout_ns > 0 ? lp_deadline_after(c, timeout_ns) : 0;
    lp_use_lua_locale();
    lp_watch_saved watch;
    lp_watch_enter(c, L, c->deadline_ns, &watch);
    int status = lua_pcall(L, nargs, nresults, base);
    lp_watch_leave(c, &watch);
    // A call that came back after its deadline (from a long C function, or through a pcall
    // that swallowed the hook's error in the last instructions) failed all the same: the
    // caller must not take its results, and the instance is replaced as for any timeout.
    int late = LP_LIMIT_NONE;
    if (status == LUA_OK) {
        if (atomic_load_explicit(&c->interrupt, memory_order_relaxed)) late = LP_LIMIT_INTERRUPT;
        else if (c->limit_hit == LP_LIMIT_TIME || c->limit_hit == LP_LIMIT_INTERRUPT) late = c->limit_hit;
        else if (c->deadline_ns && lp_coarse_ns(c) > c->deadline_ns) late = LP_LIMIT_TIME;
    }
    c->deadline_ns = 0;
    if (c->rearmed) {  // undo a re-arm
        c->rearmed = 0;
        lua_sethook(L, lp_hook, LUA_MASKCOUNT, c->hook_count);
    }
    if (late != LP_LIMIT_NONE) {
        c->limit_hit = late;
        lua_settop(L, base - 1);
        lua_pushstring(L, late == LP_LIMIT_TIME
                              ? "timeout: the call ran past its time limit (it returned after its deadline)"
                              : "interrupted");
        return LUA_ERRRUN;
    }
    if (status == LUA_OK && nresults == 0) {
        lua_settop(L, base - 1);  // only the handler is left
        return status;
    }
    if (status == LUA_ERRMEM && c->limit_hit == LP_LIMIT_NONE) c->limit_hit = LP_LIMIT_MEMORY;
    if (status != LUA_OK && (c->limit_hit == LP_LIMIT_TIME || c->limit_hit == LP_LIMIT_INTERRUPT)
        && status != LUA_ERRRUN) {  // a refused allocation (see lp_alloc): say what it was
        lua_settop(L, base - 1);
        lua_pushstring(L, c->limit_hit == LP_LIMIT_TIME ? "timeout: the call ran past its time limit"
                                                        : "interrupted");
        return LUA_ERRRUN;
    }
    if (status == LUA_ERRERR && c->limit_hit == LP_LIMIT_NONE && c->mem_limit
        && c->mem_used + 4096 > c->mem_limit) c->limit_hit = LP_LIMIT_MEMORY;
    lua_remove(L, base);
    if (status != LUA_OK && !lua_isstring(L, -1)) {
        // The message handler could not run (memory, or an error in the handler itself).
        lua_pop(L, 1);
        lua_pushstring(L, status == LUA_ERRMEM ? "not enough memory (memory limit reached)"
                                               : "error in error handling");
    }
    return status;
}

// The same for a function already pushed with its arguments: slips the handler below it.
static int lp_pcall_limited(lua_State *L, int nargs, int nresults, int64_t timeout_ns) {
    int base = lua_gettop(L) - nargs;  // the function's index
    lua_pushcfunction(L, lp_msghandler);  // light C function: no allocation
    lua_insert(L, base);
    return pcall_at(L, base, nargs, nresults, timeout_ns);
}

int lp_dochunk(lua_State *L, const char *code, size_t len, const char *chunkname,
               int nresults, int64_t timeout_ns) {
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    // Parsing runs in C too: it gets the same deadline as the chunk, checked between pieces.
    lp_ctl *c = lp_ctl_get(L);
    c->limit_hit = LP_LIMIT_NONE;
    c->deadline_ns = timeout_ns > 0 ? lp_deadline_after(c, timeout_ns) : 0;
    int status = lp_load_text(L, code, len, chunkname);
    c->deadline_ns = 0;
    if (c->rearmed) {
        c->rearmed = 0;
        lua_sethook(L, lp_hook, LUA_MASKCOUNT, c->hook_count);
    }
    if (status != LUA_OK) {
        if (status == LUA_ERRMEM && c->limit_hit == LP_LIMIT_NONE) c->limit_hit = LP_LIMIT_MEMORY;
        return status;
    }
    return lp_pcall_limited(L, 0, nresults, timeout_ns);
}

// Pushes what the call needs and the function with its arguments: [arg, ctx, fn, args...].
// Returns the number of arguments, or -1 when `when` said no (call->result is SKIPPED).
// [-0, +(2|3+n), e]
int lp_call_prepare(lua_State *L, lp_call *call) {
    lua_settop(L, 0);
    luaL_checkstack(L, 8, NULL);
    if (call->arg) {
        lp_anchor_reset(L);
        lp_tape_push(L, call->arg, call->arg_len);            // [arg]
    } else {
        lua_pushnil(L);                                       // [nil]
    }
    if (call->ctx_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, call->ctx_ref);     // [arg, ctx]
        if (call->record_number > 0 && lua_type(L, -1) == LUA_TTABLE) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, lp_ctl_get(L)->record_number_ref);
            lua_pushinteger(L, call->record_number);
            lua_rawset(L, -3);
        }
    } else {
        lua_pushnil(L);                                       // [arg, nil]
    }
    if (call->when_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, call->when_ref);
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);                                    // [arg, ctx, ok]
        int ok = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!ok) { call->result = LP_RESULT_SKIPPED; return -1; }
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, call->fn_ref);          // [arg, ctx, fn]
    int nargs = 0;
    if (call->arg) { lua_pushvalue(L, 1); nargs++; }
    if (call->ctx_ref != LUA_NOREF) { lua_pushvalue(L, 2); nargs++; }
    return nargs;
}

// Reads the function's result per the call's mode: [arg, ctx, result]. [-0, +0, e]
int lp_call_finish(lua_State *L, lp_call *call) {
    switch (call->mode) {
    case LP_MODE_VALUE:
        lp_tape_write(L, -1, &call->out, "result");
        call->result = LP_RESULT_VALUE;
        return 0;
    case LP_MODE_TRUTH:
        call->result = lua_toboolean(L, -1) ? LP_RESULT_TRUE : LP_RESULT_FALSE;
        return 0;
    case LP_MODE_RECORD: break;
    default:
        call->result = LP_RESULT_NONE;
        return 0;
    }
    int t = lua_type(L, -1);
    if (t == LUA_TNIL) {
        lp_tape_write(L, 1, &call->out, "record");
        call->result = LP_RESULT_PASS;
    } else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
        call->result = LP_RESULT_DROP;
    } else if (t == LUA_TTABLE) {
        lp_tape_write(L, -1, &call->out, "returned record");
        call->result = LP_RESULT_REPLACE;
    } else {
        return luaL_error(L, "process must return nil (pass), false (drop) or a record table "
                             "(replace), not a %s", luaL_typename(L, -1));
    }
    if (call->out.len > 0 && call->out.data[0] != LP_T_OBJECT)
        return luaL_error(L, "process must return a record (a table with string keys), not a list");
    return 0;
}

// [call] -> [] : the body of lp_run, inside protection.
static int lp_run_main(lua_State *L) {
    lp_call *call = lua_touserdata(L, 1);
    int nargs = lp_call_prepare(L, call);
    if (nargs < 0) return 0;
    lua_call(L, nargs, 1);                                    // [arg, ctx, result]
    return lp_call_finish(L, call);
}

int lp_run(lua_State *L, lp_call *call) {
    lp_ctl *c = lp_ctl_get(L);
    call->out.len = 0;
    call->emits.len = 0;
    call->emit_count = 0;
    call->result = LP_RESULT_PASS;
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    c->call = call;
    lua_pushcfunction(L, lp_msghandler);
    int base = lua_gettop(L);
    lua_pushcfunction(L, lp_run_main);
    lua_pushlightuserdata(L, call);
    int status = pcall_at(L, base, 1, 0, call->timeout_ns);
    c->call = NULL;
    c->cur_table = NULL;
    c->cur_lazy = NULL;
    return status;
}

// The next two allocate outside protection. They only run while the host sets a state up
// (never while a plugin's code runs), so the memory limit is lifted for them: the only error
// they could raise is a memory error.
int lp_ref(lua_State *L) {
    lp_ctl *c = lp_ctl_get(L);
    size_t limit = c->mem_limit;
    c->mem_limit = 0;
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    c->mem_limit = limit;
    return ref;
}

void lp_unref(lua_State *L, int ref) { luaL_unref(L, LUA_REGISTRYINDEX, ref); }
int lp_getref(lua_State *L, int ref) { return lua_rawgeti(L, LUA_REGISTRYINDEX, ref); }

int lp_rawgetfield(lua_State *L, int idx, const char *name) {
    idx = lua_absindex(L, idx);
    lp_ctl *c = lp_ctl_get(L);
    size_t limit = c->mem_limit;
    c->mem_limit = 0;
    lua_pushstring(L, name);
    c->mem_limit = limit;
    return lua_rawget(L, idx);
}

// [value, buf] -> []
static int lp_to_tape_main(lua_State *L) {
    lp_buf *out = lua_touserdata(L, 2);
    lp_tape_write(L, 1, out, "value");
    return 0;
}

int lp_to_tape(lua_State *L, int idx, lp_buf *out) {
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    idx = lua_absindex(L, idx);
    out->len = 0;
    lua_pushcfunction(L, lp_to_tape_main);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, out);
    return lp_pcall_limited(L, 2, 0, 0);
}
