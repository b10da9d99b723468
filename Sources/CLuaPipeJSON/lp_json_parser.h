// The recursive part of the JSON reader (lp_json.c), included twice: with LP_JSON_CHECKED 0
// for the JSON Lines reader, whose output holds the bound and needs no checks, and with 1 for
// luapipe.json.decode, whose output is cut to what the memory limit leaves (each value and
// string run checks for room). The checks cost 7-10% of a record's parse in the first.
// P(name) names each copy's functions apart.

// Room for n more output bytes? (Past the bound, never false: one compare per value or run.)
static inline int P(room)(parser *s, size_t n) {
#if LP_JSON_CHECKED
    if ((size_t)(s->oend - s->o) >= n) return 1;
    s->full = 1;
    return 0;
#else
    (void)s; (void)n;
    return 1;  // the output holds lp_json_tape_bound(n) bytes: always room
#endif
}

static int P(value)(parser *s, int depth);

static int P(utf8_seq)(parser *s) {
    if (!P(room)(s, 4)) return -1;
    uint8_t c = *s->p;
    int need; uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
    else return -1;
    if (s->end - s->p <= need) return -1;
    for (int k = 1; k <= need; k++) {
        uint8_t cc = s->p[k];
        if ((cc & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (cc & 0x3F);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return -1;
    memcpy(s->o, s->p, (size_t)need + 1);
    s->o += need + 1;
    s->p += need + 1;
    return 0;
}

static int P(escape)(parser *s) {
    if (!P(room)(s, 4)) return -1;
    s->p++;
    if (s->p >= s->end) return -1;
    uint8_t c = *s->p++;
    switch (c) {
    case '"': *s->o++ = '"'; return 0;
    case '\\': *s->o++ = '\\'; return 0;
    case '/': *s->o++ = '/'; return 0;
    case 'b': *s->o++ = 8; return 0;
    case 'f': *s->o++ = 12; return 0;
    case 'n': *s->o++ = 10; return 0;
    case 'r': *s->o++ = 13; return 0;
    case 't': *s->o++ = 9; return 0;
    case 'u': {
        uint32_t cp, lo;
        if (hex4(s, &cp)) return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u') return -1;
            s->p += 2;
            if (hex4(s, &lo) || lo < 0xDC00 || lo > 0xDFFF) return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return -1;
        }
        put_scalar(s, cp);
        return 0;
    }
    default: return -1;
    }
}

// At the opening quote: writes u32 length + bytes.
static int P(string)(parser *s) {
    if (!P(room)(s, 4)) return -1;
    s->p++;
    uint8_t *len_at = s->o;
    s->o += 4;
    uint8_t *start = s->o;
    for (;;) {
        const uint8_t *q = s->p;
        while (q < s->end && *q != '"' && *q != '\\' && *q >= 0x20 && *q < 0x80) q++;
        if (q > s->p) {
            if (!P(room)(s, (size_t)(q - s->p))) return -1;
            memcpy(s->o, s->p, (size_t)(q - s->p));
            s->o += q - s->p;
            s->p = q;
        }
        if (s->p >= s->end) return -1;
        uint8_t c = *s->p;
        if (c == '"') { s->p++; break; }
        if (c == '\\') { if (P(escape)(s)) return -1; }
        else if (c < 0x20) return -1;
        else if (P(utf8_seq)(s)) return -1;
    }
    put32(len_at, (uint32_t)(s->o - start));
    return 0;
}

static int P(array)(parser *s, int depth) {
    uint8_t *at = open_container(s, T_ARRAY, depth);
    if (!at) return -1;
    uint32_t count = 0;
    for (int more = !empty_container(s, ']'); more; ) {
        skip_space(s);
        if (P(value)(s, depth)) return -1;
        count++;
        if ((more = next_item(s, ']')) < 0) return -1;
    }
    return close_container(s, at, count);
}

static int P(object)(parser *s, int depth) {
    uint8_t *at = open_container(s, T_OBJECT, depth);
    if (!at) return -1;
    uint32_t count = 0;
    for (int more = !empty_container(s, '}'); more; ) {
        skip_space(s);
        if (s->p >= s->end || *s->p != '"') return -1;
        uint8_t *key = s->o;
        if (P(string)(s)) return -1;
        if (count < LINEAR_KEYS && seen_key(at, count, key)) return -1;  // a duplicate
        skip_space(s);
        if (s->p >= s->end || *s->p != ':') return -1;
        s->p++;
        skip_space(s);
        if (P(value)(s, depth)) return -1;
        count++;
        if ((more = next_item(s, '}')) < 0) return -1;
    }
    close_container(s, at, count);
    if (count > LINEAR_KEYS && has_duplicate(at, count) != 0) return -1;  // a duplicate (or no memory)
    return 0;
}

static int P(value)(parser *s, int depth) {
    if (s->p >= s->end || !P(room)(s, 9)) return -1;
    switch (*s->p) {
    case '{': return P(object)(s, depth + 1);
    case '[': return P(array)(s, depth + 1);
    case '"': *s->o++ = T_STRING; return P(string)(s);
    case 't': return literal(s, "true", 4, T_TRUE);
    case 'f': return literal(s, "false", 5, T_FALSE);
    case 'n': return literal(s, "null", 4, T_NULL);
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) return number(s);
        return -1;
    }
}

