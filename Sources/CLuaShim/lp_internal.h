// Internal to CLuaShim: shared between its C files, never seen by Swift.
#ifndef LP_INTERNAL_H
#define LP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "CLuaShim.h"
#include "lp_json.h"  // lp_tape_skip
#include <lauxlib.h>
#include <lualib.h>

#define LP_HOOK_COUNT 1000

// Freed small blocks kept for reuse, per 16-byte size class (see lp_alloc in lp_state.c).
#define LP_POOL_CLASSES 32          // blocks of up to 512 bytes
#define LP_POOL_MAX_BYTES (1 << 20) // at most this much kept per state

struct lp_ctl {
    void *pool[LP_POOL_CLASSES + 1]; // free lists, by size / 16 (rounded up)
    size_t pool_bytes;
    atomic_int interrupt;   // set from any thread
    int64_t deadline_ns;    // CLOCK_MONOTONIC; 0: none
    int64_t coarse_res_ns;  // CLOCK_MONOTONIC_COARSE's resolution (0: not usable)
    size_t mem_used;
    size_t mem_limit;       // 0: none
    int limit_hit;          // LP_LIMIT_* of the current/last call
    int hook_count;
    int rearmed;            // the hook runs at every instruction until the call ends
    lp_call *call;          // the call in progress (for ctx.emit), or NULL
    uint64_t serial;        // counts lp_run calls: what was pushed for which call
    uint64_t anchor_serial; // the call the registry's anchor table belongs to
    const void *lazy_mt;    // the metatables of lazy records, empty lists and empty objects,
    const void *array_mt;   // to compare with (the registry keeps them alive)
    const void *object_mt;
    int lazy_mt_ref;        // registry index of the lazy records' metatable (an array slot)
    int record_number_ref;  // registry index of the string "record_number"
    // The call's own record and its lazy state: the metamethods and the writer find it here
    // without a hidden-field lookup. Set while a call runs (its stack keeps the table alive).
    const void *cur_table;
    struct lp_lazy *cur_lazy;
    // Calls that wait (lp_wait.c): the task running now, if any, and the blocking wait.
    struct lp_task *task;
    lp_wait_fn wait_fn;
    void *wait_ctx;
    lp_buf wait_req, wait_reply;   // a blocking wait's request and answer
    // The watchdog (lp_watchdog.c). While Lua runs on its thread: `watch_deadline` is the
    // run's deadline (INT64_MAX: none; 0: no Lua runs) and `running` the coroutine running.
    _Atomic int64_t watch_deadline;
    atomic_int poke;           // set before the signal: the handler acts only on this
    atomic_int owner_tid;      // the thread that runs it (gettid)
    lua_State *volatile running;
    int64_t poked_at;          // the watchdog's own, under its lock
    int watched;
};

/// The state's control block: kept in the extra space before each lua_State (the main
/// thread's, copied into every coroutine), so reaching it is one load. [-0, +0, -]
static inline lp_ctl *lp_ctl_get(lua_State *L) { return *(lp_ctl **)lua_getextraspace(L); }
int64_t lp_now_ns(void);

// Registry keys (addresses of statics used as light userdata keys).
extern const char lp_key_array_mt, lp_key_object_mt, lp_key_anchor;

// Tape writer (lp_tape.c). Both raise Lua errors; run only inside protected code.
void lp_tape_push(lua_State *L, const uint8_t *tape, size_t len);   // [-0, +1, e]
void lp_tape_write(lua_State *L, int idx, lp_buf *out, const char *what); // [-0, +0, e]
/// Starts a new call (counts calls: the lazy record of which call is which). [-0, +0, -]
void lp_anchor_reset(lua_State *L);
/// Pushes the value at offset `at` of `tape`; its tables keep their key order (lp_order_*).
/// [-0, +1, e]
void lp_tape_push_at(lua_State *L, const uint8_t *tape, size_t len, size_t at);

// Lazy records (lp_lazy.c): the call's record, built field by field as the plugin reads it.
typedef struct lp_lazy {
    uint32_t count, len;   // top-level keys; tape bytes
    uint64_t serial;       // the call it was pushed for
    int added;             // a key not among the tape's was set (the writer then looks for it)
    uint32_t *key_at;      // offset of each key entry (u32 length, bytes, then the value)
    uint8_t *loaded;       // per key: 1 once the table holds (or deleted) the field
    uint8_t *tape;         // the record's own copy of the tape
    uint32_t *index;       // with more than LP_LAZY_LINEAR keys: a hash of key -> i + 1
    uint32_t index_cap;    // its slots (a power of 2); filled on the first lookup
    int indexed;
} lp_lazy;
#define LP_LAZY_LINEAR 16
void lp_lazy_open(lua_State *L);                                     // [-0, +0, m]
void lp_lazy_push(lua_State *L, const uint8_t *tape, size_t len, uint64_t serial); // [-0,+1,m]
/// The lazy state of the table at `t`, or NULL for anything else. [-0, +0, -]
lp_lazy *lp_lazy_of(lua_State *L, int t);
/// The same for a table known to carry the lazy metatable (its metamethods, the writer):
/// the call's own record straight from the control block, any other by its hidden field.
/// [-0, +0, -]
lp_lazy *lp_lazy_state(lua_State *L, int t);
/// The index of key k among the record's original keys, or -1.
int lp_lazy_find(lp_lazy *z, const char *k, size_t n);
/// True for the hidden key a lazy table keeps its state under. [-0, +0, -]
int lp_lazy_hidden_key(lua_State *L, int idx);
/// Builds every field still missing and makes `t` a plain table. [-0, +0, e]
void lp_lazy_materialize(lua_State *L, int t);
int lp_plain(lua_State *L);  // lua_CFunction: luapipe._plain
void lp_buf_put_slow(lua_State *L, lp_buf *b, const void *p, size_t n);  // lp_buf_grow, then copies
/// Appends n bytes; raises a memory error when the buffer cannot grow within the state's
/// memory limit (lp_buf_grow). Inline: the writer puts a tag, a length and a few bytes at a time.
static inline void lp_buf_put(lua_State *L, lp_buf *b, const void *p, size_t n) {
    if (b->len + n <= b->cap) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return;
    }
    lp_buf_put_slow(L, b, p, n);
}
int lp_utf8_valid(const uint8_t *s, size_t len);

// The luapipe module (lp_module.c).
int lp_open_luapipe(lua_State *L);  // lua_CFunction: pushes the module table
int lp_msghandler(lua_State *L);

// Lua patterns with a step budget (lp_pattern.c): replaces find/match/gmatch/gsub.
void lp_open_patterns(lua_State *L, int idx);

// MARK: Limits inside C functions (lp_state.c, lp_stdlib.c; the branch `limits`)
//
// The count hook only runs between VM instructions. C code that can run long checks the same
// deadline and interrupt flag itself, through these.

/// Allocations from this size on check the deadline (lp_alloc).
#define LP_BIG_BLOCK (64u << 10)

/// The largest plugin file or module luapipe reads (LuaState.readFile has the same number).
#define LP_MAX_SOURCE_BYTES (16u << 20)

/// CLOCK_MONOTONIC_COARSE (a few ns to read): deadlines carry its resolution already, so
/// comparing with it is at most one tick late. [-0, +0, -]
static inline int64_t lp_coarse_ns(const lp_ctl *c) {
    struct timespec ts;
    if (c->coarse_res_ns <= 0 || clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return lp_now_ns();
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
/// Which limit is due now (LP_LIMIT_INTERRUPT, LP_LIMIT_TIME) or LP_LIMIT_NONE. [-0, +0, -]
static inline int lp_limit_due(const lp_ctl *c) {
    if (atomic_load_explicit(&c->interrupt, memory_order_relaxed)) return LP_LIMIT_INTERRUPT;
    if (c->deadline_ns && lp_coarse_ns(c) > c->deadline_ns) return LP_LIMIT_TIME;
    return LP_LIMIT_NONE;
}
/// Records the broken limit, re-arms the hook to fire at every instruction (so a pcall that
/// catches the error meets it again at once) and raises the limit's error. [-0, +0, v]
int lp_limit_raise(lua_State *L, int why);
/// Raises when a limit is due. [-0, +0, v]
static inline void lp_limit_check(lua_State *L) {
    int why = lp_limit_due(lp_ctl_get(L));
    if (why != LP_LIMIT_NONE) lp_limit_raise(L, why);
}
/// Loads a text chunk from memory in pieces, checking the limits between pieces, so that
/// parsing a large chunk cannot outlive the call's deadline. Pushes the function or the
/// message; returns a Lua status. [-0, +1, m]
int lp_load_text(lua_State *L, const char *s, size_t len, const char *chunkname);
/// Replaces the standard functions that loop in C (string.rep, table.concat/unpack/sort,
/// load) and makes every C function of the sandbox's libraries check the limits when it is
/// called (lp_stdlib.c). Runs inside protection. [-0, +0, e]
void lp_open_stdlib(lua_State *L);
/// os.execute for plugins granted `os` (lp_os.c): stops the command at the deadline.
int lp_os_execute(lua_State *L);
/// table.concat, unpack and sort with limit checks (lp_tablib.c): lua_CFunctions.
int lp_tab_concat(lua_State *L);
int lp_tab_unpack(lua_State *L);
int lp_tab_sort(lua_State *L);
/// The sandbox's Lua part (lp_prelude.c).
extern const char lp_prelude[];
extern const size_t lp_prelude_len;

// MARK: - Bridge: host memory and key order (lp_tape.c, lp_module.c, lp_lazy.c)
//
// Host memory: every lp_buf a call fills for the host grows through lp_buf_grow, which
// counts the growth in the state's mem_used (the allocator's own count, so Lua's allocations
// and the host's buffers share one limit) and refuses past mem_limit.

/// Bytes the state may still take before its memory limit (SIZE_MAX: no limit). [-0, +0, -]
size_t lp_mem_room(lua_State *L);
/// Makes room for `extra` more bytes in b, counted in the state's memory. Past the limit it
/// runs a full collection once, then marks the call as a memory breach (LP_LIMIT_MEMORY)
/// and raises "not enough memory: <what> ... would take the plugin past its memory limit (memory_mb)".
/// Grows by doubling, but never past what the limit leaves. [-0, +0, e]
void lp_buf_grow(lua_State *L, lp_buf *b, size_t extra, const char *what);
/// The same without the error: 0 when b has the room, -1 when not (b unchanged). [-0, +0, -]
int lp_buf_try_grow(lua_State *L, lp_buf *b, size_t extra);
/// Counts capacity added to b without lp_buf_grow (by a Swift host function). [-0, +0, -]
void lp_buf_charge(lua_State *L, lp_buf *b);
/// Gives back the capacity of b past its length when that is more than LP_BUF_SLACK. [-0,+0,-]
void lp_buf_fit(lua_State *L, lp_buf *b);
#define LP_BUF_SLACK (64u << 10)
/// Marks a memory breach and raises the memory error for `what` needing `need` bytes (its
/// message is made with the limit lifted: it must not fail for want of memory). [-0, +0, v]
int lp_memory_error(lua_State *L, const char *what, size_t need);
/// lp_tape_write, with `mem_what` naming the value in a memory error ("the arguments of
/// 'set'") where `what` prefixes the other errors ("bad argument #2 to 'set'"). [-0, +0, e]
void lp_tape_write_as(lua_State *L, int idx, lp_buf *out, const char *what, const char *mem_what);

// Key order: a table built from a tape keeps its keys' order for its whole life (keys added
// later go after them, sorted). A host-owned weak-keyed table maps each such table to its
// order (see lp_tape.c for why that weak table is safe).

/// Remembers the order of the `count` key entries (u32 length, bytes), found at `key_at[i]`
/// offsets of `base`, for the table at t. [-0, +0, m]
void lp_order_set_keys(lua_State *L, int t, const uint8_t *base, const uint32_t *key_at, uint32_t count);


// MARK: The watchdog (lp_watchdog.c)
typedef struct { lua_State *running; int64_t deadline; lp_ctl *tls; } lp_watch_saved;
void lp_watch_register(lp_ctl *c);    // at lp_newstate
void lp_watch_unregister(lp_ctl *c);  // at lp_close
/// Around every run of Lua on a state (pcall_at, a task's resume): L runs now, with that
/// deadline (0: none). Nests. [-0, +0, -]
void lp_watch_enter(lp_ctl *c, lua_State *L, int64_t deadline_ns, lp_watch_saved *s);
void lp_watch_leave(lp_ctl *c, const lp_watch_saved *s);
/// A coroutine takes over on this thread (coroutine.resume); returns the one it replaces.
static inline lua_State *lp_watch_switch(lp_ctl *c, lua_State *co) {
    lua_State *was = c->running;
    c->running = co;
    return was;
}

// MARK: Calls and waits (lp_state.c, lp_wait.c)
void lp_use_lua_locale(void);
int64_t lp_deadline_after(lp_ctl *c, int64_t timeout_ns);
void lp_hook(lua_State *L, lua_Debug *ar);
/// The two halves of a plugin call around the function call itself (lp_run, tasks).
int lp_call_prepare(lua_State *L, lp_call *call);   // [-0, +?, e]: nargs, or -1 when skipped
int lp_call_finish(lua_State *L, lp_call *call);    // [-0, +0, e]
/// luapipe.sleep, luapipe.http.request, ctx.call (luapipe._call), and the coroutine
/// functions that let a plugin's own coroutines wait. [-0, +0, e]
void lp_open_waits(lua_State *L, int luapipe_table);
/// What a waiting call yields (its address, as a light userdata): a task that yields it
/// waits; anything else yielded at the top of a call is an error (lp_task.c).
extern const char lp_wait_mark;
/// The body of every waiting function: yields from a task, or blocks in the host's wait;
/// the arguments are the stack. Returns the wait's results or raises. [-0, +(0|1), v]
int lp_wait_call(lua_State *L, int kind);
/// What a wait of `kind` is called in messages ("luapipe.sleep", "ctx.shared:incr"). [-0, +0, -]
const char *lp_wait_name(int kind);
/// ctx.shared's methods as calls that wait (lp_shared.c): sets luapipe._shared to a table of
/// them, which the prelude takes for ctx.shared. [-0, +0, m]
void lp_open_shared_waits(lua_State *L, int luapipe_table);
/// True for one of those functions (a coroutine suspended in it waits). [-0, +0, -]
int lp_is_shared_wait(lua_CFunction f);
#endif
