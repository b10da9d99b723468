// JSON text <-> record tapes in C: the hot path of the JSON Lines reader and writer.
// The tape layout is CLuaShim.h's (and Tape.swift's). Swift's JSONReader stays the
// reference: on any error these return -1 and the caller asks the Swift reader, which
// says what and where.
#ifndef LP_JSON_H
#define LP_JSON_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/// The offset just past the tape value that starts at `at` (tags: 0 null, 1 false, 2 true,
/// 3 int, 4 double, 5 string, 6 array, 7 object).
static inline size_t lp_tape_skip(const uint8_t *tape, size_t at) {
    uint32_t n;
    switch (tape[at]) {
    case 3: case 4: return at + 9;
    case 5: memcpy(&n, tape + at + 1, 4); return at + 5 + n;
    case 6: case 7: memcpy(&n, tape + at + 5, 4); return at + 9 + n;
    default: return at + 1;
    }
}

/// Set once per process from the system's random source (lp_json.c).
extern uint64_t lp_hash_seed;

/// The hash of a record's keys, where a linear scan would be too slow (objects and lazy
/// records with many keys). Seeded at random per process and mixed through all 64 bits:
/// FNV-1a (used before) let crafted keys share their low bits, which are all a table of 2^k
/// slots looks at, and so turn every lookup into a scan of all keys.
static inline uint32_t lp_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = lp_hash_seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    h = (h ^ v) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

/// The most tape bytes a JSON text of n bytes can give.
static inline size_t lp_json_tape_bound(size_t n) { return 9 * n + 16; }

/// Parses one JSON value (`record_only`: an object) from p[0..<n] into out, which holds at
/// least lp_json_tape_bound(n) bytes. Returns the tape length, or -1 when the text is not
/// accepted (the Swift reader then reports why).
long lp_json_parse(const uint8_t *p, size_t n, uint8_t *out, int record_only);

/// Among `n` key entries (u32 length, bytes) at base + at[i], in text order: the number of the
/// first that repeats an earlier one, -1 when none does, -2 when out of memory. Sorts the
/// keys' hashes (radix): O(n) memory and time (the JSON readers' check for objects of many keys).
long lp_json_first_duplicate(const uint8_t *base, const uint32_t *at, size_t n);

/// The same into `out` of `cap` bytes, which may be less than the bound: returns
/// LP_JSON_FULL when the tape would not fit (luapipe.json.decode bounds it by the memory
/// limit), -1 when the text is not accepted.
#define LP_JSON_FULL (-2)
long lp_json_parse_into(const uint8_t *p, size_t n, uint8_t *out, size_t cap, int record_only);

/// The same, into a buffer of the calling thread (kept until the thread ends, or until
/// lp_json_scratch_trim when over 1 MiB).
/// Returns the tape, valid until the thread's next call, or NULL; *len is its length.
const uint8_t *lp_json_parse_scratch(const uint8_t *p, size_t n, int record_only, size_t *len);
/// Asked every 65,536 containers and items by lp_json_parse_scratch_stoppable: nonzero stops
/// the parse.
typedef int (*lp_json_stop_fn)(void *ctx);
/// lp_json_parse_scratch for a text long enough to outlive a deadline (a lookup row): NULL
/// with *stopped = 1 when `stop` said so.
const uint8_t *lp_json_parse_scratch_stoppable(const uint8_t *p, size_t n, int record_only, size_t *len,
                                               lp_json_stop_fn stop, void *ctx, int *stopped);
/// The most JSON bytes a tape of n bytes can give.
static inline size_t lp_json_text_bound(size_t n) { return 6 * n + 64; }

/// Formats a double as the shortest text that reads back the same, with a '.' or an
/// exponent; returns its length (at most 32). Set once by the host (Swift's description).
typedef int (*lp_json_double_fn)(double v, uint8_t *out);
void lp_json_set_double_formatter(lp_json_double_fn fn);

/// Writes the tape's value as compact JSON into out (at least lp_json_text_bound(len)
/// bytes). Returns the text's length.
size_t lp_json_write(const uint8_t *tape, size_t len, uint8_t *out);

/// The exact length of the JSON text lp_json_write makes of the tape (for a caller that
/// cannot afford lp_json_text_bound).
size_t lp_json_text_size(const uint8_t *tape, size_t len);

/// The same, into a buffer of the calling thread; valid until its next call.
const uint8_t *lp_json_write_scratch(const uint8_t *tape, size_t len, size_t *out_len);

/// Frees the calling thread's buffers that a long line made larger than 1 MiB.
void lp_json_scratch_trim(void);

#endif
