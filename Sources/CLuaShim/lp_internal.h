// Internal to CLuaShim: shared between its C files, never seen by Swift.
#ifndef LP_INTERNAL_H
#define LP_INTERNAL_H

#include <stdatomic.h>
#include "CLuaShim.h"
#include <lauxlib.h>
#include <lualib.h>

#define LP_HOOK_COUNT 1000

struct lp_ctl {
    atomic_int interrupt;   // set from any thread
    int64_t deadline_ns;    // CLOCK_MONOTONIC; 0: none
    size_t mem_used;
    size_t mem_limit;       // 0: none
    int limit_hit;          // LP_LIMIT_* of the current/last call
    int hook_count;
    lp_call *call;          // the call in progress (for ctx.emit), or NULL
};

lp_ctl *lp_ctl_get(lua_State *L);
int64_t lp_now_ns(void);

// Registry keys (addresses of statics used as light userdata keys).
extern const char lp_key_array_mt, lp_key_object_mt, lp_key_anchor, lp_key_codec;

// Tape writer (lp_tape.c). Both raise Lua errors; run only inside protected code.
void lp_tape_push(lua_State *L, const uint8_t *tape, size_t len);   // [-0, +1, e]
void lp_tape_write(lua_State *L, int idx, lp_buf *out, const char *what); // [-0, +0, e]
/// Starts a fresh anchor table for the next pushed record (original key order). [-0,+0,m]
void lp_anchor_reset(lua_State *L);
void lp_buf_put(lua_State *L, lp_buf *b, const void *p, size_t n);  // raises on OOM
int lp_utf8_valid(const uint8_t *s, size_t len);

// The luapipe module (lp_module.c).
int lp_open_luapipe(lua_State *L);  // lua_CFunction: pushes the module table
int lp_msghandler(lua_State *L);

// Lua patterns with a step budget (lp_pattern.c): replaces find/match/gmatch/gsub.
void lp_open_patterns(lua_State *L, int idx);

#endif
