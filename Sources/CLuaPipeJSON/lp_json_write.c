// Tape -> JSON text, following JSONWriter.swift's rules: only the escapes JSON requires.
#include <stdlib.h>
#include <string.h>
#include "lp_json_internal.h"

static lp_json_double_fn format_double;

void lp_json_set_double_formatter(lp_json_double_fn fn) { format_double = fn; }

static const char hexdigits[] = "0123456789abcdef";

static uint8_t *write_string(uint8_t *o, const uint8_t *s, uint32_t n) {
    *o++ = '"';
    uint32_t start = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint8_t c = s[k];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        memcpy(o, s + start, k - start);
        o += k - start;
        start = k + 1;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case 10: *o++ = 'n'; break;
        case 13: *o++ = 'r'; break;
        case 9: *o++ = 't'; break;
        case 8: *o++ = 'b'; break;
        case 12: *o++ = 'f'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = (uint8_t)hexdigits[c >> 4]; *o++ = (uint8_t)hexdigits[c & 15];
        }
    }
    memcpy(o, s + start, n - start);
    o += n - start;
    *o++ = '"';
    return o;
}

static uint8_t *write_int(uint8_t *o, int64_t v) {
    if (v >= 0 && v < 10) { *o++ = (uint8_t)('0' + v); return o; }
    uint8_t tmp[20];
    int k = 20;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { tmp[--k] = (uint8_t)('0' + m % 10); m /= 10; } while (m);
    if (v < 0) *o++ = '-';
    memcpy(o, tmp + k, (size_t)(20 - k));
    return o + (20 - k);
}

static uint8_t *write_value(uint8_t *o, const uint8_t **pp) {
    const uint8_t *p = *pp;
    uint8_t tag = *p++;
    uint32_t n;
    switch (tag) {
    case T_NULL: memcpy(o, "null", 4); o += 4; break;
    case T_TRUE: memcpy(o, "true", 4); o += 4; break;
    case T_FALSE: memcpy(o, "false", 5); o += 5; break;
    case T_INT: { int64_t v; memcpy(&v, p, 8); p += 8; o = write_int(o, v); break; }
    case T_DOUBLE: { double d; memcpy(&d, p, 8); p += 8; o += format_double(d, o); break; }
    case T_STRING: memcpy(&n, p, 4); p += 4; o = write_string(o, p, n); p += n; break;
    case T_ARRAY:
        memcpy(&n, p, 4); p += 8;
        *o++ = '[';
        for (uint32_t k = 0; k < n; k++) {
            if (k) *o++ = ',';
            o = write_value(o, &p);
        }
        *o++ = ']';
        break;
    case T_OBJECT:
        memcpy(&n, p, 4); p += 8;
        *o++ = '{';
        for (uint32_t k = 0; k < n; k++) {
            if (k) *o++ = ',';
            uint32_t kn; memcpy(&kn, p, 4); p += 4;
            o = write_string(o, p, kn); p += kn;
            *o++ = ':';
            o = write_value(o, &p);
        }
        *o++ = '}';
        break;
    default: break;  // tapes come from the reader or the bridge: never here
    }
    *pp = p;
    return o;
}

size_t lp_json_write(const uint8_t *tape, size_t len, uint8_t *out) {
    if (len == 0) return 0;
    const uint8_t *p = tape;
    return (size_t)(write_value(out, &p) - out);
}

static size_t string_size(const uint8_t *s, uint32_t n) {
    size_t size = 2 + n;
    for (uint32_t k = 0; k < n; k++) {
        uint8_t c = s[k];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        size += (c == '"' || c == '\\' || c == 10 || c == 13 || c == 9 || c == 8 || c == 12) ? 1 : 5;
    }
    return size;
}

static size_t value_size(const uint8_t **pp) {
    const uint8_t *p = *pp;
    uint8_t tag = *p++;
    uint32_t n;
    size_t size = 0;
    switch (tag) {
    case T_NULL: case T_TRUE: size = 4; break;
    case T_FALSE: size = 5; break;
    case T_INT: { int64_t v; memcpy(&v, p, 8); p += 8; uint8_t tmp[24]; size = (size_t)(write_int(tmp, v) - tmp); break; }
    case T_DOUBLE: { double d; memcpy(&d, p, 8); p += 8; uint8_t tmp[40]; size = (size_t)format_double(d, tmp); break; }
    case T_STRING: memcpy(&n, p, 4); p += 4; size = string_size(p, n); p += n; break;
    case T_ARRAY:
        memcpy(&n, p, 4); p += 8;
        size = 2 + (n ? n - 1 : 0);
        for (uint32_t k = 0; k < n; k++) size += value_size(&p);
        break;
    case T_OBJECT:
        memcpy(&n, p, 4); p += 8;
        size = 2 + (n ? n - 1 : 0) + n;  // braces, commas, colons
        for (uint32_t k = 0; k < n; k++) {
            uint32_t kn; memcpy(&kn, p, 4); p += 4;
            size += string_size(p, kn); p += kn;
            size += value_size(&p);
        }
        break;
    default: break;
    }
    *pp = p;
    return size;
}

size_t lp_json_text_size(const uint8_t *tape, size_t len) {
    if (len == 0) return 0;
    const uint8_t *p = tape;
    return value_size(&p);
}

const uint8_t *lp_json_write_scratch(const uint8_t *tape, size_t len, size_t *out_len) {
    scratch *s = lp_json_scratch_get();
    if (!s || !lp_json_reserve(&s->text, &s->text_cap, lp_json_text_bound(len))) return NULL;
    *out_len = lp_json_write(tape, len, s->text);
    return s->text;
}
