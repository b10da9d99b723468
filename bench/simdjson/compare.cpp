// Reads JSON Lines and makes luapipe's record tape from each line two ways: with luapipe's
// hand-written C reader (Sources/CLuaPipeJSON/lp_json.c) and with simdjson's DOM parser
// plus a walk that writes the same tape. Checks both agree; prints ns per record.
// Built and run by bench/simdjson/run.sh (needs libsimdjson-dev).
#include <simdjson.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>
extern "C" {
#include "lp_json.h"
}

static void put32(std::vector<uint8_t> &o, size_t at, uint32_t v) { memcpy(o.data() + at, &v, 4); }
static void add32(std::vector<uint8_t> &o, uint32_t v) { o.insert(o.end(), (uint8_t *)&v, (uint8_t *)&v + 4); }

// The same tape: tags 0 null, 1 false, 2 true, 3 int, 4 double, 5 string, 6 array, 7 object.
static bool walk(simdjson::dom::element e, std::vector<uint8_t> &o) {
    using namespace simdjson;
    switch (e.type()) {
    case dom::element_type::NULL_VALUE: o.push_back(0); return true;
    case dom::element_type::BOOL: o.push_back(bool(e) ? 2 : 1); return true;
    case dom::element_type::INT64: { int64_t v = int64_t(e); o.push_back(3); o.insert(o.end(), (uint8_t *)&v, (uint8_t *)&v + 8); return true; }
    case dom::element_type::UINT64: { double v = double(uint64_t(e)); o.push_back(4); o.insert(o.end(), (uint8_t *)&v, (uint8_t *)&v + 8); return true; }
    case dom::element_type::DOUBLE: { double v = double(e); o.push_back(4); o.insert(o.end(), (uint8_t *)&v, (uint8_t *)&v + 8); return true; }
    case dom::element_type::STRING: { std::string_view s = e; o.push_back(5); add32(o, (uint32_t)s.size()); o.insert(o.end(), s.begin(), s.end()); return true; }
    case dom::element_type::ARRAY: {
        o.push_back(6); size_t at = o.size(); add32(o, 0); add32(o, 0);
        uint32_t n = 0;
        for (auto v : dom::array(e)) { if (!walk(v, o)) return false; n++; }
        put32(o, at, n); put32(o, at + 4, (uint32_t)(o.size() - at - 8));
        return true;
    }
    case dom::element_type::OBJECT: {
        o.push_back(7); size_t at = o.size(); add32(o, 0); add32(o, 0);
        uint32_t n = 0;
        std::vector<std::string_view> keys;  // duplicate keys are an input error for luapipe
        for (auto [k, v] : dom::object(e)) {
            for (auto &seen : keys) if (seen == k) return false;
            keys.push_back(k);
            add32(o, (uint32_t)k.size()); o.insert(o.end(), k.begin(), k.end());
            if (!walk(v, o)) return false;
            n++;
        }
        put32(o, at, n); put32(o, at + 4, (uint32_t)(o.size() - at - 8));
        return true;
    }
    }
    return false;
}

int main(int argc, char **argv) {
    std::ifstream in(argv[1]);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::vector<uint8_t> tape(1 << 20), out;
    simdjson::dom::parser parser;
    size_t agree = 0;
    for (auto &l : lines) {
        long n = lp_json_parse((const uint8_t *)l.data(), l.size(), tape.data(), 1);
        out.clear();
        simdjson::padded_string p(l);
        auto doc = parser.parse(p);
        if (!doc.error() && walk(doc.value(), out) && n == (long)out.size() && memcmp(tape.data(), out.data(), n) == 0) agree++;
    }
    for (int round = 0; round < 3; round++) {
        auto t0 = std::chrono::steady_clock::now();
        size_t sink = 0;
        for (auto &l : lines) sink += lp_json_parse((const uint8_t *)l.data(), l.size(), tape.data(), 1);
        auto t1 = std::chrono::steady_clock::now();
        std::vector<simdjson::padded_string> padded(lines.begin(), lines.end());  // simdjson needs padding
        auto t2 = std::chrono::steady_clock::now();
        for (auto &p : padded) {
            out.clear();
            auto doc = parser.parse(p);
            if (!doc.error()) walk(doc.value(), out);
            sink += out.size();
        }
        auto t3 = std::chrono::steady_clock::now();
        auto ns = [&](auto a, auto b) { return std::chrono::duration<double, std::nano>(b - a).count() / lines.size(); };
        printf("round %d: lp_json %.0f ns/record, simdjson DOM + walk %.0f ns/record (padding copy %.0f ns more) [%zu]\n",
               round + 1, ns(t0, t1), ns(t2, t3), ns(t1, t2), sink % 10);
    }
    printf("%zu of %zu records: the same tape both ways\n", agree, lines.size());
}
