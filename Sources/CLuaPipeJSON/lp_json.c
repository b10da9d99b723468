// JSON text -> tape, following JSONReader.swift exactly on what it accepts and what it makes
// (RFC 8259; UTF-8 checked; nesting <= 512; duplicate keys refused; integers that fit 64
// bits stay integers). Measured reason for C: the Swift reader took 1.1 us of a record's
// 4.5 us in a one-plugin pipeline (docs/performance.md).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include "lp_json_internal.h"

uint64_t lp_hash_seed = 0x2545F4914F6CDD1Dull;

__attribute__((constructor)) static void lp_hash_seed_init(void) {
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 32);
    }
    lp_hash_seed = seed;
}

#define MAX_DEPTH 512

typedef struct parser {
    const uint8_t *p, *end;
    uint8_t *out, *o;
    uint8_t *oend;  // the output's end: a value needs at most 9 bytes, a string 4 + its text's
    int full;       // the output ran out (not a syntax error)
    lp_json_stop_fn stop;  // NULL: never stops
    void *stop_ctx;
    uint32_t countdown;    // containers and items until `stop` is asked again
    int stopped;
} parser;

// Asks `stop` every 65,536 containers and items (a few milliseconds of parsing).
static inline int should_stop(parser *s) {
    if (!s->stop || --s->countdown) return 0;
    s->countdown = 1u << 16;
    if (!s->stop(s->stop_ctx)) return 0;
    s->stopped = 1;
    return 1;
}

static inline void skip_space(parser *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static inline void put32(uint8_t *at, uint32_t v) { memcpy(at, &v, 4); }

static int hex4(parser *s, uint32_t *v) {
    if (s->end - s->p < 4) return -1;
    uint32_t r = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = s->p[k];
        uint32_t d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        r = r << 4 | d;
    }
    s->p += 4;
    *v = r;
    return 0;
}

static void put_scalar(parser *s, uint32_t cp) {
    if (cp < 0x80) *s->o++ = (uint8_t)cp;
    else if (cp < 0x800) { *s->o++ = (uint8_t)(0xC0 | cp >> 6); *s->o++ = (uint8_t)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        *s->o++ = (uint8_t)(0xE0 | cp >> 12); *s->o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *s->o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *s->o++ = (uint8_t)(0xF0 | cp >> 18); *s->o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *s->o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); *s->o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
}

static inline int is_digit(const parser *s) { return s->p < s->end && *s->p >= '0' && *s->p <= '9'; }

// Inlined into both copies of value() (lp_json_parser.h), as it was into the one before.
static inline __attribute__((always_inline)) int number(parser *s) {
    const uint8_t *start = s->p;
    int negative = 0, overflow = 0, is_float = 0;
    if (*s->p == '-') { negative = 1; s->p++; }
    if (!is_digit(s)) return -1;
    uint64_t mag = 0;
    if (*s->p == '0') {
        s->p++;
        if (is_digit(s)) return -1;
    } else {
        while (is_digit(s)) {
            uint64_t d = (uint64_t)(*s->p - '0');
            if (mag > (UINT64_MAX - d) / 10) overflow = 1;
            mag = mag * 10 + d;
            s->p++;
        }
    }
    // The mantissa with the fraction's digits, and how many those are: for the fast path.
    uint64_t m = mag;
    int frac = 0, exact = !overflow && mag <= (1ULL << 53);
    if (s->p < s->end && *s->p == '.') {
        is_float = 1;
        s->p++;
        if (!is_digit(s)) return -1;
        while (is_digit(s)) {
            if (m < (1ULL << 53) / 10) { m = m * 10 + (uint64_t)(*s->p - '0'); frac++; }
            else exact = 0;
            s->p++;
        }
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        is_float = 1;
        exact = 0;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!is_digit(s)) return -1;
        while (is_digit(s)) s->p++;
    }
    if (!is_float && !overflow) {
        int64_t v;
        int ok = 1;
        if (!negative && mag <= (uint64_t)INT64_MAX) v = (int64_t)mag;
        else if (negative && mag <= (uint64_t)INT64_MAX + 1) v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
        else ok = 0;
        if (ok) {
            *s->o++ = T_INT;
            memcpy(s->o, &v, 8);
            s->o += 8;
            return 0;
        }
    }
    if (exact && frac <= 22) {
        // Clinger's fast path: both operands are exact doubles, so the division rounds once,
        // correctly, as strtod would (most JSON numbers take it: short decimals).
        static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
        double d = (double)m / pow10[frac];
        if (negative) d = -d;
        *s->o++ = T_DOUBLE;
        memcpy(s->o, &d, 8);
        s->o += 8;
        return 0;
    }
    size_t n = (size_t)(s->p - start);
    char small[64];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return -1;
    memcpy(buf, start, n);
    buf[n] = 0;
    double d = strtod(buf, NULL);
    if (buf != small) free(buf);
    if (d - d != 0) return -1;  // not finite: "number out of range"
    *s->o++ = T_DOUBLE;
    memcpy(s->o, &d, 8);
    s->o += 8;
    return 0;
}

static int literal(parser *s, const char *word, size_t n, uint8_t tag) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return -1;
    s->p += n;
    *s->o++ = tag;
    return 0;
}

// At '[' or '{': writes the tag and room for count and size; NULL when nested too deep.
static uint8_t *open_container(parser *s, uint8_t tag, int depth) {
    if (depth > MAX_DEPTH || should_stop(s)) return NULL;
    *s->o++ = tag;
    uint8_t *at = s->o;
    s->o += 8;
    s->p++;
    skip_space(s);
    return at;
}

// At ']' or '}' when the container is empty: steps over it.
static int empty_container(parser *s, uint8_t close) {
    if (s->p < s->end && *s->p == close) { s->p++; return 1; }
    return 0;
}

static int close_container(parser *s, uint8_t *at, uint32_t count) {
    put32(at, count);
    put32(at + 4, (uint32_t)(s->o - at - 8));
    return 0;
}

// After an item: 1 at ',' (another follows), 0 at the closing bracket, -1 at anything else.
static int next_item(parser *s, uint8_t close) {
    if (should_stop(s)) return -1;
    skip_space(s);
    if (s->p >= s->end) return -1;
    if (*s->p == ',') { s->p++; return 1; }
    if (*s->p == close) { s->p++; return 0; }
    return -1;
}

// Duplicate keys. Up to LINEAR_KEYS keys (most records) each new key is compared with the
// ones before it. A wider object is checked once, when it closes: the hashes of its keys are
// sorted and equal neighbours compared (lp_json_first_duplicate). Checking each key in a hash
// set as it came cost one or two cache misses a key once the set outgrew the cache (a 63 MiB
// line of 4.7M keys spent 2.3 s there); sorting reads and writes in order.
#define LINEAR_KEYS 16

static int key_equal(const uint8_t *a, const uint8_t *b) {
    uint32_t an, bn;
    memcpy(&an, a, 4); memcpy(&bn, b, 4);
    return an == bn && memcmp(a + 4, b + 4, an) == 0;
}

// 1 when the key entry at `key` repeats one of the `count` entries after `at` (the object's
// count and size fields).
static int seen_key(const uint8_t *at, uint32_t count, const uint8_t *key) {
    const uint8_t *e = at + 8;
    for (uint32_t k = 0; k < count; k++) {
        uint32_t en;
        memcpy(&en, e, 4);
        if (key_equal(e, key)) return 1;
        e += lp_tape_skip(e + 4 + en, 0) + 4 + en;
    }
    return 0;
}

// Sorts a[0..<n] (the key's hash in the high half, its offset from `base` in the low) by
// hash, stably (equal hashes stay in text order), and returns the offset of the first key
// that repeats an earlier one, or -1. `t` has room for n more. Insertion sort for a few keys,
// else a radix sort of the hash, 11 bits a pass.
static long first_repeat(const uint8_t *base, uint64_t *a, uint64_t *t, size_t n) {
    if (n <= 64) {
        for (size_t i = 1; i < n; i++) {
            uint64_t v = a[i];
            size_t j = i;
            while (j > 0 && (a[j - 1] >> 32) > (v >> 32)) { a[j] = a[j - 1]; j--; }
            a[j] = v;
        }
    } else {
        for (int shift = 32; shift < 64; shift += 11) {
            size_t count[2049] = { 0 };
            for (size_t i = 0; i < n; i++) count[((a[i] >> shift) & 2047) + 1]++;
            for (int k = 0; k < 2048; k++) count[k + 1] += count[k];
            for (size_t i = 0; i < n; i++) t[count[(a[i] >> shift) & 2047]++] = a[i];
            uint64_t *swap = a; a = t; t = swap;
        }
    }
    long first = -1;
    for (size_t i = 0; i < n; ) {
        size_t j = i + 1;
        while (j < n && (a[j] >> 32) == (a[i] >> 32)) j++;
        for (size_t x = i + 1; x < j; x++) {  // each key of a run against those before it
            uint32_t kx = (uint32_t)a[x];
            if (first >= 0 && kx >= (uint32_t)first) continue;
            for (size_t y = i; y < x; y++)
                if (key_equal(base + (uint32_t)a[y], base + kx)) { first = (long)kx; break; }
        }
        i = j;
    }
    return first;
}

static uint64_t key_slot(const uint8_t *base, uint32_t off) {
    uint32_t len;
    memcpy(&len, base + off, 4);
    return (uint64_t)lp_hash_bytes(base + off + 4, len) << 32 | off;
}

long lp_json_first_duplicate(const uint8_t *base, const uint32_t *at, size_t n) {
    if (n < 2) return -1;
    uint64_t small[2 * 64];
    uint64_t *a = n <= 64 ? small : malloc(2 * n * sizeof *a);
    if (!a) return -2;
    for (size_t i = 0; i < n; i++) a[i] = key_slot(base, at[i]);
    long off = first_repeat(base, a, a + n, n);
    if (a != small) free(a);
    if (off < 0) return -1;
    for (size_t i = 0; i < n; i++) if (at[i] == (uint32_t)off) return (long)i;
    return -1;
}

// For an object with more than LINEAR_KEYS keys when it closes: 1 when a key repeats, 0 when
// none does, -1 when out of memory.
static int has_duplicate(const uint8_t *at, uint32_t count) {
    uint64_t small[2 * 64];
    uint64_t *a = count <= 64 ? small : malloc(2 * (size_t)count * sizeof *a);
    if (!a) return -1;
    const uint8_t *e = at + 8;
    for (uint32_t k = 0; k < count; k++) {
        uint32_t en;
        memcpy(&en, e, 4);
        a[k] = key_slot(at, (uint32_t)(e - at));
        e += lp_tape_skip(e + 4 + en, 0) + 4 + en;
    }
    long first = first_repeat(at, a, a + count, count);
    if (a != small) free(a);
    return first >= 0;
}

#define P(name) name
#define LP_JSON_CHECKED 0
#include "lp_json_parser.h"
#undef P
#undef LP_JSON_CHECKED
#define P(name) name##_checked
#define LP_JSON_CHECKED 1
#include "lp_json_parser.h"
#undef P
#undef LP_JSON_CHECKED

long lp_json_parse_into(const uint8_t *p, size_t n, uint8_t *out, size_t cap, int record_only) {
    parser s = { p, p + n, out, out, out + cap, 0, NULL, NULL, 0, 0 };
    skip_space(&s);
    if (s.p >= s.end || (record_only && *s.p != '{')) return -1;
    if (value_checked(&s, 0)) return s.full ? LP_JSON_FULL : -1;
    skip_space(&s);
    if (s.p != s.end) return -1;
    return (long)(s.o - s.out);
}

static long parse_stoppable(const uint8_t *p, size_t n, uint8_t *out, int record_only,
                            lp_json_stop_fn stop, void *ctx, int *stopped) {
    parser s = { p, p + n, out, out, out + lp_json_tape_bound(n), 0, stop, ctx, 1u << 16, 0 };
    long r = -1;
    skip_space(&s);
    if (s.p < s.end && !(record_only && *s.p != '{') && !value(&s, 0)) {
        skip_space(&s);
        if (s.p == s.end) r = (long)(s.o - s.out);
    }
    if (stopped) *stopped = s.stopped;
    return r;
}

long lp_json_parse(const uint8_t *p, size_t n, uint8_t *out, int record_only) {
    parser s = { p, p + n, out, out, out + lp_json_tape_bound(n), 0, NULL, NULL, 0, 0 };
    skip_space(&s);
    if (s.p >= s.end || (record_only && *s.p != '{')) return -1;
    if (value(&s, 0)) return -1;
    skip_space(&s);
    if (s.p != s.end) return -1;
    return (long)(s.o - s.out);
}

// Each thread's buffers, freed when the thread ends (a pthread key's destructor: plain
// thread-locals would leak them, and embedders start and stop worker threads).
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    scratch *s = p;
    free(s->tape);
    free(s->text);
    free(s);
}

static void scratch_key_make(void) { pthread_key_create(&scratch_key, scratch_free); }

scratch *lp_json_scratch_get(void) {
    pthread_once(&scratch_once, scratch_key_make);
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (s && pthread_setspecific(scratch_key, s) != 0) { free(s); s = NULL; }
    }
    return s;
}

uint8_t *lp_json_reserve(uint8_t **buf, size_t *cap, size_t need) {
    if (need > *cap) {
        free(*buf);
        *cap = need < 4096 ? 4096 : need;
        *buf = malloc(*cap);
        if (!*buf) *cap = 0;
    }
    return *buf;
}

const uint8_t *lp_json_parse_scratch(const uint8_t *p, size_t n, int record_only, size_t *len) {
    scratch *s = lp_json_scratch_get();
    if (!s || !lp_json_reserve(&s->tape, &s->tape_cap, lp_json_tape_bound(n))) return NULL;
    long r = lp_json_parse(p, n, s->tape, record_only);
    if (r < 0) return NULL;
    *len = (size_t)r;
    return s->tape;
}

const uint8_t *lp_json_parse_scratch_stoppable(const uint8_t *p, size_t n, int record_only, size_t *len,
                                               lp_json_stop_fn stop, void *ctx, int *stopped) {
    *stopped = 0;
    scratch *s = lp_json_scratch_get();
    if (!s || !lp_json_reserve(&s->tape, &s->tape_cap, lp_json_tape_bound(n))) return NULL;
    long r = parse_stoppable(p, n, s->tape, record_only, stop, ctx, stopped);
    if (r < 0) return NULL;
    *len = (size_t)r;
    return s->tape;
}

void lp_json_scratch_trim(void) {
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) return;
    if (s->tape_cap > (1u << 20)) { free(s->tape); s->tape = NULL; s->tape_cap = 0; }
    if (s->text_cap > (1u << 20)) { free(s->text); s->text = NULL; s->text_cap = 0; }
}
