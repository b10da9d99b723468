// Tapes <-> Lua values. Everything here raises Lua errors and runs inside protection.
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "lp_internal.h"

const char lp_key_array_mt = 0, lp_key_object_mt = 0, lp_key_anchor = 0;
static const char lp_null_marker = 0;
void *lp_null(void) { return (void *)&lp_null_marker; }

void lp_buf_free(lp_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = b->charged = 0;
}

int lp_buf_reserve(lp_buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    // Exactly what is asked: its callers (Swift host functions) write a result they measured
    // against their budget once; a doubling could pass the budget.
    size_t cap = b->len + extra;
    uint8_t *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

// MARK: - Host memory: the buffers a call fills count against the state's limit

size_t lp_mem_room(lua_State *L) {
    lp_ctl *c = lp_ctl_get(L);
    if (!c->mem_limit) return SIZE_MAX;
    return c->mem_used < c->mem_limit ? c->mem_limit - c->mem_used : 0;
}

static void uncharge(lp_ctl *c, size_t n) { c->mem_used = c->mem_used > n ? c->mem_used - n : 0; }

void lp_buf_release(lua_State *L, lp_buf *b) {
    uncharge(lp_ctl_get(L), b->charged);
    lp_buf_free(b);
}

void lp_buf_charge(lua_State *L, lp_buf *b) {
    lp_ctl *c = lp_ctl_get(L);
    if (b->cap > b->charged) c->mem_used += b->cap - b->charged;
    else uncharge(c, b->charged - b->cap);
    b->charged = b->cap;
}

void lp_buf_fit(lua_State *L, lp_buf *b) {
    if (b->cap - b->len <= LP_BUF_SLACK) return;
    if (b->len == 0) { lp_buf_release(L, b); return; }
    uint8_t *d = realloc(b->data, b->len);
    if (!d) return;  // keeps the larger block (and its count)
    b->data = d;
    b->cap = b->len;
    lp_buf_charge(L, b);
}

int lp_memory_error(lua_State *L, const char *what, size_t need) {
    lp_ctl *c = lp_ctl_get(L);
    c->limit_hit = LP_LIMIT_MEMORY;
    size_t limit = c->mem_limit;
    c->mem_limit = 0;  // the message itself must not fail for want of memory
    luaL_where(L, 1);
    lua_pushfstring(L, "not enough memory: %s (%I KiB) would take the plugin past its memory limit (memory_mb)",
                    what, (lua_Integer)(need >> 10));
    lua_concat(L, 2);
    c->mem_limit = limit;
    return lua_error(L);
}

// The slow path of every put: the fast path (lp_buf_put, wput) only compares and copies.
// A value that expands as it is written (a DAG of shared tables: 41 tables can stand for
// 2^40 leaves) stops here when it reaches the limit, not after.
int lp_buf_try_grow(lua_State *L, lp_buf *b, size_t extra) {
    if (extra <= b->cap - b->len) return 0;
    lp_ctl *c = lp_ctl_get(L);
    if (extra > (SIZE_MAX >> 2) - b->len) return -1;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    if (c->mem_limit) {
        size_t most = lp_mem_room(L) + b->charged;  // the capacity b may have
        if (need > most) {
            lua_gc(L, LUA_GCCOLLECT, 0);  // garbage counts until it is collected
            most = lp_mem_room(L) + b->charged;
            if (need > most) return -1;
        }
        if (cap > most) cap = most;  // the rest of the budget, not a doubling past it
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
    lp_buf_charge(L, b);
    return 0;
}

void lp_buf_grow(lua_State *L, lp_buf *b, size_t extra, const char *what) {
    if (lp_buf_try_grow(L, b, extra) != 0) lp_memory_error(L, what, b->len + extra);
}

void lp_buf_put_slow(lua_State *L, lp_buf *b, const void *p, size_t n) {
    lp_buf_grow(L, b, n, "data for the host");
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void patch_u32(lp_buf *b, size_t at, uint32_t v) { memcpy(b->data + at, &v, 4); }

// MARK: - Key order

// Each table built from a tape keeps its keys' order for its life, also past the call it was
// made in (a plugin may keep a decoded object in a module variable and return it later).
// The order lives in a weak-keyed table that the host owns and plugins cannot reach:
// table -> userdata (an object's keys: u32 count, then u32 length + bytes each), or
// table -> true (a list: its kind survives being emptied).
//
// Why a weak table is safe here: the collector's cost for an ephemeron table is bounded when
// no value can make a key reachable. These values are userdata without user values, and
// booleans: marking one marks nothing else, so the convergence loop ends after its second
// pass, linear in the table's size. The entry of a table goes when the table is collected.
// Its memory is Lua heap: it counts against memory_mb.
static const char lp_key_order = 0;

static int order_table(lua_State *L) {  // [-0, +1, m]: the order table, made on first use
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lp_key_order) == LUA_TTABLE) return lua_gettop(L);
    lua_pop(L, 1);
    lua_createtable(L, 0, 16);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lp_key_order);
    return lua_gettop(L);
}

// [-0, +0, m]: order[t] = a copy of the keys at base + key_at[i].
static void order_store(lua_State *L, int order, int t, const uint8_t *base, const uint32_t *key_at, uint32_t count) {
    size_t size = 4;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n; memcpy(&n, base + key_at[i], 4);
        size += 4 + (size_t)n;
    }
    lua_pushvalue(L, t);
    uint8_t *blob = lua_newuserdatauv(L, size, 0);
    memcpy(blob, &count, 4);
    uint8_t *o = blob + 4;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n; memcpy(&n, base + key_at[i], 4);
        memcpy(o, base + key_at[i], 4 + (size_t)n);
        o += 4 + (size_t)n;
    }
    lua_rawset(L, order);
}

void lp_order_set_keys(lua_State *L, int t, const uint8_t *base, const uint32_t *key_at, uint32_t count) {
    t = lua_absindex(L, t);
    luaL_checkstack(L, 4, "record nested too deep");
    int order = order_table(L);
    order_store(L, order, t, base, key_at, count);
    lua_pop(L, 1);
}

// MARK: - Push (tape -> Lua)

typedef struct reader {
    const uint8_t *base, *p, *end;
    int order;  // stack index of the order table
} reader;

static void corrupt(lua_State *L) { luaL_error(L, "luapipe: corrupt record tape (a bug)"); }

static uint32_t rd_u32(lua_State *L, reader *r) {
    if (r->end - r->p < 4) corrupt(L);
    uint32_t v;
    memcpy(&v, r->p, 4);
    r->p += 4;
    return v;
}

// The offsets (from r->base) of the `count` key entries of the object whose entries start at
// r->p, in a userdata pushed on the stack (or in `small`), for its order. [-0, +1, m]
static const uint32_t *object_keys(lua_State *L, reader *r, uint32_t count, uint32_t *small, size_t nsmall) {
    uint32_t *at = count <= nsmall ? small : lua_newuserdatauv(L, sizeof(uint32_t) * count, 0);
    if (count <= nsmall) lua_pushnil(L);  // the same stack shape either way
    const uint8_t *q = r->p;
    for (uint32_t i = 0; i < count; i++) {
        if (r->end - q < 4) corrupt(L);
        at[i] = (uint32_t)(q - r->base);
        uint32_t n; memcpy(&n, q, 4);
        if ((size_t)(r->end - q - 4) < n + (size_t)1) corrupt(L);
        size_t next = lp_tape_skip(r->base, (size_t)(q + 4 + n - r->base));
        if (next > (size_t)(r->end - r->base)) corrupt(L);
        q = r->base + next;
    }
    return at;
}

static void push_value(lua_State *L, reader *r, int depth) {
    if (r->p >= r->end) corrupt(L);
    if (depth > LP_MAX_DEPTH) luaL_error(L, "record nested deeper than %d levels", LP_MAX_DEPTH);
    uint8_t tag = *r->p++;
    switch (tag) {
    case LP_T_NULL: lua_pushlightuserdata(L, lp_null()); return;
    case LP_T_FALSE: lua_pushboolean(L, 0); return;
    case LP_T_TRUE: lua_pushboolean(L, 1); return;
    case LP_T_INT: {
        if (r->end - r->p < 8) corrupt(L);
        int64_t v; memcpy(&v, r->p, 8); r->p += 8;
        lua_pushinteger(L, (lua_Integer)v);
        return;
    }
    case LP_T_DOUBLE: {
        if (r->end - r->p < 8) corrupt(L);
        double v; memcpy(&v, r->p, 8); r->p += 8;
        lua_pushnumber(L, v);
        return;
    }
    case LP_T_STRING: {
        uint32_t n = rd_u32(L, r);
        if ((size_t)(r->end - r->p) < n) corrupt(L);
        lua_pushlstring(L, (const char *)r->p, n);
        r->p += n;
        return;
    }
    case LP_T_ARRAY:
    case LP_T_OBJECT: {
        uint32_t count = rd_u32(L, r);
        (void)rd_u32(L, r);  // size: used by readers that skip
        luaL_checkstack(L, 6, "record nested too deep");
        if (tag == LP_T_ARRAY) lua_createtable(L, (int)(count < 1u << 20 ? count : 0), 0);
        else lua_createtable(L, 0, (int)(count < 1u << 20 ? count : 0));
        int t = lua_gettop(L);
        if (count == 0) {  // an empty table keeps its kind through a metatable
            lua_rawgetp(L, LUA_REGISTRYINDEX, tag == LP_T_ARRAY ? &lp_key_array_mt : &lp_key_object_mt);
            lua_setmetatable(L, t);
            return;
        }
        if (tag == LP_T_ARRAY) {
            lua_pushvalue(L, t);
            lua_pushboolean(L, 1);
            lua_rawset(L, r->order);
            for (uint32_t i = 0; i < count; i++) {
                push_value(L, r, depth + 1);
                lua_rawseti(L, t, (lua_Integer)i + 1);
            }
            return;
        }
        uint32_t small[32];
        const uint32_t *key_at = object_keys(L, r, count, small, 32);  // [t, keys]
        order_store(L, r->order, t, r->base, key_at, count);
        lua_pop(L, 1);
        for (uint32_t i = 0; i < count; i++) {
            uint32_t n = rd_u32(L, r);
            if ((size_t)(r->end - r->p) < n) corrupt(L);
            lua_pushlstring(L, (const char *)r->p, n);
            r->p += n;
            push_value(L, r, depth + 1);
            lua_rawset(L, t);
        }
        return;
    }
    default: corrupt(L);
    }
}

// Counts calls; lp_lazy uses the count to tell the current call's record from older ones.
void lp_anchor_reset(lua_State *L) { lp_ctl_get(L)->serial++; }

void lp_tape_push_at(lua_State *L, const uint8_t *tape, size_t len, size_t at) {
    if (at >= len) corrupt(L);
    reader r = { tape, tape + at, tape + len, 0 };
    if (tape[at] != LP_T_ARRAY && tape[at] != LP_T_OBJECT) {
        push_value(L, &r, 0);
        return;
    }
    luaL_checkstack(L, 2, "record nested too deep");
    r.order = order_table(L);
    push_value(L, &r, 0);
    lua_remove(L, r.order);
}

void lp_tape_push(lua_State *L, const uint8_t *tape, size_t len) {
    lp_ctl *c = lp_ctl_get(L);
    uint32_t count = 0;
    if (len >= 9) memcpy(&count, tape + 1, 4);
    if (c->call && c->call->arg == tape && len >= 9 && tape[0] == LP_T_OBJECT && count > 0) {
        lp_lazy_push(L, tape, len, c->serial);  // the call's record: built as it is read
        return;
    }
    lp_tape_push_at(L, tape, len, 0);
}

// MARK: - Write (Lua -> tape)

typedef struct path_item { const char *key; size_t len; lua_Integer index; } path_item;

typedef struct writer {
    lp_buf *out;
    const char *what;      // prefixes errors: "returned record: field 'a': ..."
    const char *mem_what;  // names the value in a memory error
    int no_order;          // the order table does not exist (yet): no table has an order
    const lp_ctl *ctl;     // for the metatables' addresses
    uint32_t countdown;    // tables until the deadline is looked at again
    const void *seen[LP_MAX_DEPTH + 2];
    path_item path[LP_MAX_DEPTH + 2];
} writer;

// The writer's slow path: growth within the memory limit, or the memory error.
static __attribute__((noinline)) void wgrow(lua_State *L, writer *w, size_t n) {
    lp_buf *b = w->out;
    if (lp_buf_try_grow(L, b, n) == 0) return;
    size_t need = b->len + n;
    lp_buf_release(L, b);  // half a value is of no use: room for the error and its traceback
    lp_memory_error(L, w->mem_what, need);
}

// Appends to the writer's buffer: a compare and a copy; growth (and the memory limit) out of line.
static inline __attribute__((always_inline)) void wput(lua_State *L, writer *w, const void *p, size_t n) {
    lp_buf *b = w->out;
    if (n > b->cap - b->len) wgrow(L, w, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
static inline void wput8(lua_State *L, writer *w, uint8_t v) { wput(L, w, &v, 1); }
static inline void wput32(lua_State *L, writer *w, uint32_t v) { wput(L, w, &v, 4); }

static void fail(lua_State *L, writer *w, int depth, const char *fmt, const char *detail) {
    if (w->out->cap > LP_BUF_KEEP) lp_buf_release(L, w->out);  // half a value is of no use
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, w->what);
    if (depth > 0) {
        luaL_addstring(&b, ": field '");
        for (int i = 1; i <= depth; i++) {
            path_item *p = &w->path[i];
            if (p->key) {
                if (i > 1) luaL_addchar(&b, '.');
                luaL_addlstring(&b, p->key, p->len > 200 ? 200 : p->len);
            } else {
                lua_pushfstring(L, "[%I]", p->index);
                luaL_addvalue(&b);
            }
        }
        luaL_addchar(&b, '\'');
    }
    luaL_addstring(&b, ": ");
    luaL_pushresult(&b);
    lua_pushfstring(L, fmt, detail);
    lua_concat(L, 2);
    lua_error(L);
}

int lp_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {  // ASCII fast path
            uint64_t v; memcpy(&v, s + i, 8);
            if (!(v & 0x8080808080808080ULL)) { i += 8; continue; }
        }
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need; uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
        else return 0;
        if (n - i - 1 < need) return 0;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
        i += need + 1;
    }
    return 1;
}

static void write_value(lua_State *L, writer *w, int idx, int depth);

typedef struct keyref { const char *s; size_t n; } keyref;

static int keyref_cmp(const void *a, const void *b) {
    const keyref *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

static void write_key(lua_State *L, writer *w, const char *s, size_t n, int depth) {
    if (!lp_utf8_valid((const uint8_t *)s, n)) fail(L, w, depth, "%s", "key is not valid UTF-8");
    wput32(L, w, (uint32_t)n);
    wput(L, w, s, n);
}

// The keys of an order blob (see lp_key_order), into `small` when they fit (the common case:
// no allocation), else into a userdata. [-0, +(0|1), m]
static size_t blob_keys(lua_State *L, const uint8_t *blob, keyref **keys, keyref *small, size_t nsmall) {
    uint32_t count;
    memcpy(&count, blob, 4);
    const uint8_t *p = blob + 4;
    *keys = count <= nsmall ? small : lua_newuserdatauv(L, sizeof(keyref) * count, 0);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n; memcpy(&n, p, 4); p += 4;
        (*keys)[i].s = (const char *)p; (*keys)[i].n = n;
        p += n;
    }
    return count;
}

static void check_key(lua_State *L, writer *w, int depth) {
    if (lua_type(L, -1) == LUA_TSTRING) return;
    const char *kind = lua_isinteger(L, -1) ? "a table mixes list items and named fields"
                                           : "a table key is not a string";
    fail(L, w, depth, "%s (JSON objects need string keys)", kind);
}

// Writes the keys of `t` that are neither among `orig` nor among the lazy record's keys, in
// sorted order; at most `room` of them. Returns how many it wrote.
static uint32_t write_extras(lua_State *L, writer *w, int t, int depth, const keyref *orig, size_t norig,
                             lp_lazy *z, size_t room) {
    int top = lua_gettop(L);
    uint32_t *index = NULL, mask = 0;
    if (norig > LP_LAZY_LINEAR) {  // many original keys: find them by hash, not by a scan each
        size_t cap = 64;
        while (cap < 2 * norig) cap *= 2;
        index = lua_newuserdatauv(L, cap * sizeof(uint32_t), 0);
        memset(index, 0, cap * sizeof(uint32_t));
        mask = (uint32_t)(cap - 1);
        for (size_t i = 0; i < norig; i++) {
            uint32_t j = lp_hash_bytes((const uint8_t *)orig[i].s, orig[i].n) & mask;
            while (index[j]) j = (j + 1) & mask;
            index[j] = (uint32_t)i + 1;
        }
    }
    keyref small[32];
    keyref *extra = small;
    if (room > 32) extra = lua_newuserdatauv(L, sizeof(keyref) * room, 0);
    size_t nextra = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (z && lp_lazy_hidden_key(L, -1)) continue;
        check_key(L, w, depth);
        keyref k;
        k.s = lua_tolstring(L, -1, &k.n);  // a string key: no conversion, no allocation
        int known = z && lp_lazy_find(z, k.s, k.n) >= 0;
        if (index) {
            for (uint32_t j = lp_hash_bytes((const uint8_t *)k.s, k.n) & mask; index[j] && !known; j = (j + 1) & mask) {
                const keyref *o = &orig[index[j] - 1];
                known = o->n == k.n && memcmp(o->s, k.s, k.n) == 0;
            }
        } else {
            for (size_t i = 0; i < norig && !known; i++)
                known = orig[i].n == k.n && memcmp(orig[i].s, k.s, k.n) == 0;
        }
        if (known) continue;
        if (nextra == room) fail(L, w, depth, "%s", "the table changed while it was written");
        extra[nextra++] = k;
    }
    qsort(extra, nextra, sizeof *extra, keyref_cmp);
    for (size_t i = 0; i < nextra; i++) {
        lua_pushlstring(L, extra[i].s, extra[i].n);
        lua_rawget(L, t);
        w->path[depth + 1] = (path_item){ extra[i].s, extra[i].n, 0 };
        write_key(L, w, extra[i].s, extra[i].n, depth + 1);
        write_value(L, w, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    return (uint32_t)nextra;
}

// A lazy record: fields never touched are copied from its tape as they are (consecutive
// ones in one copy).
static void write_lazy(lua_State *L, writer *w, int t, int depth, lp_lazy *z) {
    wput8(L, w, LP_T_OBJECT);
    size_t at = w->out->len;
    wput32(L, w, 0); wput32(L, w, 0);
    uint32_t written = 0, present = 0;
    int scratch = lua_gettop(L);
    size_t run = 0, run_end = 0;  // a run of untouched fields not yet copied: [run, run_end)
    for (uint32_t i = 0; i < z->count; i++) {
        const uint8_t *p = z->tape + z->key_at[i];
        uint32_t n; memcpy(&n, p, 4);
        if (!z->loaded[i]) {
            if (run_end != z->key_at[i]) {
                if (run_end > run) wput(L, w, z->tape + run, run_end - run);
                run = z->key_at[i];
            }
            run_end = lp_tape_skip(z->tape, z->key_at[i] + 4 + n);
            written++;
            continue;
        }
        if (run_end > run) wput(L, w, z->tape + run, run_end - run);
        run = run_end = 0;
        lua_pushlstring(L, (const char *)p + 4, n);
        if (lua_rawget(L, t) != LUA_TNIL) {
            w->path[depth + 1] = (path_item){ (const char *)p + 4, n, 0 };
            wput(L, w, p, 4 + n);
            write_value(L, w, lua_gettop(L), depth + 1);
            written++;
            present++;
        }
        lua_pop(L, 1);
    }
    if (run_end > run) wput(L, w, z->tape + run, run_end - run);
    // Fields the plugin added: the raw table holds the hidden state, what was read or
    // written, and those.
    if (z->added) {
        size_t total = 0;
        lua_pushnil(L);
        while (lua_next(L, t)) { lua_pop(L, 1); total++; }
        if (total > present + 1) written += write_extras(L, w, t, depth, NULL, 0, z, total);
    }
    lua_settop(L, scratch);
    patch_u32(w->out, at, written);
    patch_u32(w->out, at + 4, (uint32_t)(w->out->len - at - 8));
}

// A plain table written as an object: the keys of its order blob first (when it has one: it
// was built from a tape), those it still holds, in their place; then any others, sorted.
static void write_object(lua_State *L, writer *w, int t, int depth, const uint8_t *blob) {
    wput8(L, w, LP_T_OBJECT);
    size_t at = w->out->len;
    wput32(L, w, 0); wput32(L, w, 0);
    uint32_t written = 0;
    // Blobs come from tapes, which come from the JSON reader (which refuses duplicate keys)
    // or from Lua tables and Records, so their keys are unique.
    keyref *orig = NULL;
    size_t norig = 0;
    int scratch = lua_gettop(L);
    keyref small[32];
    if (blob) {
        norig = blob_keys(L, blob, &orig, small, 32);
        for (size_t i = 0; i < norig; i++) {
            lua_pushlstring(L, orig[i].s, orig[i].n);
            if (lua_rawget(L, t) != LUA_TNIL) {
                w->path[depth + 1] = (path_item){ orig[i].s, orig[i].n, 0 };
                // a key from a tape was valid UTF-8 when it was read
                wput32(L, w, (uint32_t)orig[i].n);
                wput(L, w, orig[i].s, orig[i].n);
                write_value(L, w, lua_gettop(L), depth + 1);
                written++;
            }
            lua_pop(L, 1);
        }
    }
    // Keys not in the original (or all keys of a table built by the plugin), sorted.
    size_t total = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        check_key(L, w, depth);
        total++;
    }
    if (total > written) written += write_extras(L, w, t, depth, orig, norig, NULL, total - written);
    lua_settop(L, scratch);
    patch_u32(w->out, at, written);
    patch_u32(w->out, at + 4, (uint32_t)(w->out->len - at - 8));
}

static void write_array(lua_State *L, writer *w, int t, int depth, lua_Integer n) {
    wput8(L, w, LP_T_ARRAY);
    size_t at = w->out->len;
    wput32(L, w, (uint32_t)n); wput32(L, w, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        w->path[depth + 1] = (path_item){ NULL, 0, i };
        write_value(L, w, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    patch_u32(w->out, at + 4, (uint32_t)(w->out->len - at - 8));
}

static lua_Integer count_entries(lua_State *L, int t) {
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) { lua_pop(L, 1); n++; }
    return n;
}

static void write_table(lua_State *L, writer *w, int t, int depth) {
    if (depth >= LP_MAX_DEPTH) fail(L, w, depth, "%s", "nested deeper than 512 levels");
    // A DAG of shared tables expands in C, up to memory_mb of tape: 256 MB ran 5-12 s past a
    // 200 ms deadline. The deadline and the interrupt flag every 4096 tables.
    if (--w->countdown == 0) {
        w->countdown = 4096;
        lp_limit_check(L);
    }
    const void *self = lua_topointer(L, t);
    for (int i = 0; i < depth; i++)
        if (w->seen[i] == self) fail(L, w, depth, "%s", "the table contains itself (a cycle)");
    w->seen[depth] = self;
    luaL_checkstack(L, 8, "record nested too deep");
    // Kind: an explicit marker, then where the table came from, then its shape.
    int kind = 0;  // 1 array, 2 object
    if (lua_getmetatable(L, t)) {
        const void *mt = lua_topointer(L, -1);
        if (mt == w->ctl->array_mt) kind = 1;
        else if (mt == w->ctl->object_mt) kind = 2;
        else if (mt == w->ctl->lazy_mt) kind = 3;
        lua_pop(L, 1);
    }
    if (kind == 3) {
        lp_lazy *z = lp_lazy_state(L, t);  // the metatable said so already
        if (z) { write_lazy(L, w, t, depth, z); return; }
        kind = 2;
    }
    const uint8_t *blob = NULL;  // kept alive by the order table while t lives (t is on the stack)
    if (!w->no_order && kind != 1) {  // looked up here, not per write: a lazy record needs none
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lp_key_order) == LUA_TTABLE) {
            lua_pushvalue(L, t);
            int from = lua_rawget(L, -2);
            if (from == LUA_TUSERDATA) blob = lua_touserdata(L, -1);
            if (kind == 0 && from != LUA_TNIL) kind = from == LUA_TUSERDATA ? 2 : 1;
            lua_pop(L, 1);
        } else {
            w->no_order = 1;
        }
        lua_pop(L, 1);
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    lua_Integer entries = -1;  // counted once, only when the kind or a list needs it
    if (kind == 0) {
        entries = n > 0 ? count_entries(L, t) : -1;
        kind = (n > 0 && entries == n) ? 1 : 2;
    }
    if (kind == 1) {
        if (entries < 0) entries = count_entries(L, t);
        if (entries != n)
            fail(L, w, depth, "%s", "a list has holes or named fields (only keys 1..n)");
        write_array(L, w, t, depth, n);
    } else {
        write_object(L, w, t, depth, blob);
    }
}

static void write_value(lua_State *L, writer *w, int idx, int depth) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL: wput8(L, w, LP_T_NULL); return;
    case LUA_TBOOLEAN: wput8(L, w, lua_toboolean(L, idx) ? LP_T_TRUE : LP_T_FALSE); return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            int64_t v = (int64_t)lua_tointeger(L, idx);
            wput8(L, w, LP_T_INT);
            wput(L, w, &v, 8);
        } else {
            double v = (double)lua_tonumber(L, idx);
            if (isnan(v)) fail(L, w, depth, "%s", "NaN cannot be written as JSON");
            if (isinf(v)) fail(L, w, depth, "%s", "an infinite number cannot be written as JSON");
            wput8(L, w, LP_T_DOUBLE);
            wput(L, w, &v, 8);
        }
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (!lp_utf8_valid((const uint8_t *)s, n)) fail(L, w, depth, "%s", "string is not valid UTF-8");
        if (n > UINT32_MAX) fail(L, w, depth, "%s", "string longer than 4 GiB");
        wput8(L, w, LP_T_STRING);
        wput32(L, w, (uint32_t)n);
        wput(L, w, s, n);
        return;
    }
    case LUA_TTABLE: write_table(L, w, idx, depth); return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == lp_null()) { wput8(L, w, LP_T_NULL); return; }
        /* fallthrough */
    default:
        fail(L, w, depth, "a %s cannot be written as JSON", luaL_typename(L, idx));
    }
}

void lp_tape_write_as(lua_State *L, int idx, lp_buf *out, const char *what, const char *mem_what) {
    idx = lua_absindex(L, idx);
    int top = lua_gettop(L);
    // On the C stack (about 16 KB; workers have 8 MB stacks): nothing to free if we raise.
    writer wstore;
    writer *w = &wstore;
    w->out = out;
    w->what = what;
    w->mem_what = mem_what;
    w->ctl = lp_ctl_get(L);
    w->no_order = 0;
    w->countdown = 4096;
    write_value(L, w, idx, 0);
    lua_settop(L, top);
}

void lp_tape_write(lua_State *L, int idx, lp_buf *out, const char *what) {
    lp_tape_write_as(L, idx, out, what, what);
}
