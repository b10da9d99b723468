// CLuaShim: the only C between Swift and Lua 5.4.
//
// Rules this file keeps (see STYLE.md, "Lua from Swift, safely"):
// - Every function that may raise a Lua error runs under lua_pcall inside C; Swift only calls
//   the functions below, none of which raises ([-?, +?, -] in the manual's notation).
// - A longjmp never crosses a Swift frame: Swift callbacks (host functions, codec) return a
//   status and C raises after the Swift frame has returned.
// - Records cross the boundary as a "tape" (see lp_tape), never as Lua API calls from Swift.
#ifndef CLUASHIM_H
#define CLUASHIM_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Tape: the record wire format shared with Swift (LuaPipeCore/Tape.swift).
//
// value  := NULL | FALSE | TRUE | INT i64 | DOUBLE f64 | STRING u32 bytes
//         | ARRAY u32(count) u32(size) value*  | OBJECT u32(count) u32(size) (u32 bytes value)*
// All numbers little-endian, unaligned. `size` is the byte length of what follows it.
enum {
    LP_T_NULL = 0, LP_T_FALSE = 1, LP_T_TRUE = 2, LP_T_INT = 3, LP_T_DOUBLE = 4,
    LP_T_STRING = 5, LP_T_ARRAY = 6, LP_T_OBJECT = 7
};

/// A growable byte buffer owned by C (malloc), read by Swift.
///
/// The buffers a call fills for the host (its result, its emits, the scratch buffers of
/// luapipe.json and host functions, lp_to_tape's) count against the state's memory limit as
/// they grow: `charged` is how much of `cap` the state's memory count holds for this buffer.
typedef struct lp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t charged;
} lp_buf;

/// Frees the buffer without touching any state's memory count: for buffers never charged,
/// or ones whose state is being closed.
void lp_buf_free(lp_buf *b);
/// Grows to exactly len + extra, without charging (Swift host functions, which write one
/// result they measured against their budget; C charges what they added afterwards).
int lp_buf_reserve(lp_buf *b, size_t extra);
/// Frees the buffer and takes what it was charged off the state's memory count. [-0, +0, -]
void lp_buf_release(lua_State *L, lp_buf *b);

// MARK: - Limits

enum { LP_LIMIT_NONE = 0, LP_LIMIT_TIME = 1, LP_LIMIT_INTERRUPT = 2, LP_LIMIT_MEMORY = 3,
       LP_LIMIT_WAIT = 4 /* the deadline passed while the call waited: that record fails, the state is fine */ };

/// Bridge depth limit: the same nesting limit as the input reader.
#define LP_MAX_DEPTH 512

/// Per-state control block: limits, the interrupt flag, the current call's buffers.
typedef struct lp_ctl lp_ctl;

/// Creates a state with a counting allocator (limit `mem_limit` bytes, 0 = none) and the
/// count hook installed; the hook is inherited by every coroutine. NULL on failure.
/// [-0, +0, -]
lua_State *lp_newstate(size_t mem_limit);
/// Closes the state and frees its control block. [-0, +0, -]
void lp_close(lua_State *L);
lp_ctl *lp_ctl_of(lua_State *L);
/// Thread-safe: asks the running call (if any) to stop at the next hook.
void lp_ctl_interrupt(lp_ctl *c);
void lp_ctl_clear_interrupt(lp_ctl *c);
size_t lp_mem_used(lua_State *L);
size_t lp_mem_limit(lua_State *L);
void lp_set_mem_limit(lua_State *L, size_t limit);
/// Which limit the last call broke (LP_LIMIT_*), 0 if none.
int lp_limit_hit(lua_State *L);
/// Instructions between hook checks.
void lp_set_hook_count(lua_State *L, int count);

// MARK: - Sandbox and loading

typedef struct lp_sandbox_options {
    const char *root;       // folder `require` may load from (NULL: no require)
    int allow_io;
    int allow_os;
    int shared_waits;       // ctx.shared's methods are calls that wait (a store outside the process)
} lp_sandbox_options;

/// Opens the safe libraries, the `luapipe` module and the sandbox rules. Protected.
/// On success pushes the host table (where Swift puts host functions: log, shared_*) and the
/// ctx table; on error returns non-zero with the message on the stack. [-0, +(2|1), -]
int lp_open_sandbox(lua_State *L, const lp_sandbox_options *opts);

/// Loads a chunk in text mode with the given chunk name ("@path" for files) and runs it
/// protected with a traceback handler; leaves `nresults` results or the error message.
/// [-0, +(nresults|1), -]
int lp_dochunk(lua_State *L, const char *code, size_t len, const char *chunkname,
               int nresults, int64_t timeout_ns);

// MARK: - Calls

/// Results of lp_call.
enum {
    LP_RESULT_PASS = 0,     // process returned nil: `out` holds the (maybe changed) record
    LP_RESULT_REPLACE = 1,  // process returned a table: `out` holds it
    LP_RESULT_DROP = 2,     // process returned false
    LP_RESULT_VALUE = 3,    // LP_MODE_VALUE: `out` holds the first result
    LP_RESULT_SKIPPED = 4,  // the `when` function said no: the record passes unchanged
    LP_RESULT_TRUE = 5, LP_RESULT_FALSE = 6,  // LP_MODE_TRUTH
    LP_RESULT_NONE = 7      // LP_MODE_IGNORE
};

/// What lp_run makes of the called function's first result.
enum { LP_MODE_IGNORE = 0, LP_MODE_RECORD = 1, LP_MODE_VALUE = 2, LP_MODE_TRUTH = 3 };

/// One protected call of a plugin function.
typedef struct lp_call {
    int fn_ref;                 // registry ref of the function to call
    int ctx_ref;                // registry ref of the ctx table (LUA_NOREF: none)
    int when_ref;               // LP_MODE_RECORD: a predicate called first (LUA_NOREF: none)
    int mode;                   // LP_MODE_*
    int allow_emit;             // ctx.emit may be called
    const uint8_t *arg;         // tape of the first argument (record or config), or NULL
    size_t arg_len;
    int64_t record_number;      // set as ctx.record_number (0: leave)
    int64_t timeout_ns;         // 0: no deadline
    lp_buf out;                 // result tape (see LP_RESULT_*)
    lp_buf emits;               // concatenated tapes of ctx.emit'ed records
    size_t emit_count;
    int result;                 // LP_RESULT_*
} lp_call;

/// Runs the call protected, with deadline and traceback. Returns a Lua status (LUA_OK...);
/// on error the message string is left on the stack. [-0, +(0|1), -]
int lp_run(lua_State *L, lp_call *call);
/// After a call (also a failed one), once its results are copied: frees its result and emit
/// buffers, and the state's scratch buffers, that grew past LP_BUF_KEEP bytes, so a call that
/// handed over a large value does not keep that memory (and its count) for the state's life.
/// [-0, +0, -]
void lp_call_trim(lua_State *L, lp_call *call);
#define LP_BUF_KEEP (1u << 20)

/// Registry helpers. [-1, +0, -] pops the value and returns a ref (LUA_NOREF on failure).
int lp_ref(lua_State *L);
void lp_unref(lua_State *L, int ref);
/// Pushes registry[ref]. [-0, +1, -]
int lp_getref(lua_State *L, int ref);
/// Pushes the field `name` of the table at the top (raw get; no metamethods). [-0, +1, -]
int lp_rawgetfield(lua_State *L, int idx, const char *name);
/// Writes the value at `idx` as a tape. Protected; on error the message is on the stack.
/// [-0, +(0|1), -]
int lp_to_tape(lua_State *L, int idx, lp_buf *out);

// MARK: - Host functions

/// What a host function or codec returns: LP_HOST_OK with its result in `*result`, or an
/// error message in `*result`. LP_HOST_MEMORY: what it would have to build passes `budget`
/// (the bytes `*result` may hold: what is left of the state's memory limit); C then marks the
/// call as a memory breach (LP_LIMIT_MEMORY), so the instance is replaced.
enum { LP_HOST_OK = 0, LP_HOST_ERROR = -1, LP_HOST_MEMORY = -2 };

/// A host function written in Swift. It never touches the Lua API: C converts the arguments
/// (after `self` for methods) to one tape ARRAY before the call, and after the Swift frame has
/// returned pushes the result or raises the error. The result tape goes in `*result` (no
/// result when result->len == 0); it must not build more than `budget` bytes.
typedef int (*lp_host_fn)(void *ctx, const uint8_t *args, size_t len, size_t budget, lp_buf *result);

/// Sets `table[name]` (table: a registry ref) to a C closure that calls `fn(ctx, ...)` and is
/// named `name` in error messages. Protected; the error message is left on the stack.
int lp_set_host(lua_State *L, int table_ref, const char *name, lp_host_fn fn, void *ctx);
/// Sets `table[name]` to the value a tape holds. Protected, as above.
int lp_set_value(lua_State *L, int table_ref, const char *name, const uint8_t *tape, size_t len);

/// The JSON codec, written in Swift, registered once. Pure functions: they never touch Lua.
/// decode: JSON bytes -> tape, or an error message (C parses first with CLuaPipeJSON; this
/// runs when that refused the text, to say why). encode: tape -> JSON bytes. Both return an
/// LP_HOST_* status and build at most `budget` bytes.
typedef int (*lp_codec_fn)(const uint8_t *in, size_t len, size_t budget, lp_buf *out);
void lp_set_codec(lp_codec_fn decode, lp_codec_fn encode);

/// The light userdata that stands for JSON null (`luapipe.null`).
void *lp_null(void);

// MARK: - Calls that wait (lp_wait.c)
//
// luapipe.sleep, luapipe.http.request and ctx.call wait for the host. A record's call run as
// a task (a coroutine) yields while it waits, so the thread runs other records' calls; any
// other call (setup, tick, flush, teardown, a call not run as a task) blocks its thread in
// the host's blocking wait.

/// What a call waits for: its arguments go to the host as a tape ARRAY. The LP_WAIT_SHARED_*
/// kinds are ctx.shared's methods when the store lives outside the process (lp_shared.c):
/// their arguments are the method's, without `self`.
enum {
    LP_WAIT_SLEEP = 1, LP_WAIT_HTTP = 2, LP_WAIT_CALL = 3,
    LP_WAIT_SHARED_GET = 4, LP_WAIT_SHARED_SET = 5, LP_WAIT_SHARED_INCR = 6,
    LP_WAIT_SHARED_DELETE = 7, LP_WAIT_SHARED_KEYS = 8
};
/// How a wait ended (the host's answer): a value (a tape, or nothing), an error message, the
/// call's deadline, or an answer too large for the memory limit.
enum { LP_WAIT_OK = 0, LP_WAIT_ERROR = 1, LP_WAIT_TIMEOUT = 2, LP_WAIT_MEMORY = 3 };

/// One record's call as a task. The host fills `call` as for lp_run, starts it, and while it
/// waits answers `reply`/`reply_status`, then resumes it. Reused from call to call.
typedef struct lp_task {
    lp_call call;
    int thread_ref;           // registry ref of its coroutine (LUA_NOREF until first start)
    int64_t deadline_ns;      // CLOCK_MONOTONIC
    const void *cur_table;    // the call's record and its lazy state, kept while it waits
    void *cur_lazy;
    int wait_kind;            // LP_WAIT_* it waits for (when lp_task_* returned LUA_YIELD)
    lp_buf request;           // the wait's arguments: a tape ARRAY
    lp_buf reply;             // the answer: a tape (empty: no value) or an error message
    int reply_status;         // LP_WAIT_*
} lp_task;

/// Starts the call in a coroutine: LUA_OK when it ended (results in t->call, as lp_run's),
/// LUA_YIELD when it waits (t->wait_kind, t->request), else an error status with the message
/// (and traceback) on L's stack and lp_limit_hit set as for lp_run. [-0, +(0|1), -]
int lp_task_start(lua_State *L, lp_task *t);
/// Resumes a waiting task with the host's answer (reply, reply_status). Same results.
int lp_task_resume(lua_State *L, lp_task *t);
/// Frees the task's coroutine and buffers. [-0, +0, -]
void lp_task_free(lua_State *L, lp_task *t);

/// The host's blocking wait, for calls that are not tasks: answers `reply` and returns an
/// LP_WAIT_* status, waiting at most until `deadline_ns` (0: none); `budget` bounds the reply.
typedef int (*lp_wait_fn)(void *ctx, int kind, const uint8_t *request, size_t len, int64_t deadline_ns,
                          size_t budget, lp_buf *reply);
void lp_set_wait(lua_State *L, lp_wait_fn fn, void *ctx);


#ifdef __cplusplus
}
#endif
#endif
