# P7 helper for scripts/bench-stream.sh (redis-py). Usage:
#   stream.py fill PORT STREAM FILE        DEL the stream, then XADD each line as field `json`
#   stream.py peer PORT IN OUT GROUP NAME  a consumer-group worker doing P1's three transforms
#   stream.py last PORT STREAM             the ms time of the stream's last entry id, and its length
#   stream.py check PORT STREAM FILE       the stream's records, as a set, equal the file's
import json, re, sys, time
import redis

def connect(port):
    return redis.Redis(host="127.0.0.1", port=int(port))

def fill(r, stream, path):
    r.delete(stream)
    with open(path, "rb") as f:
        pipe = r.pipeline(transaction=False)
        for k, line in enumerate(f, 1):
            pipe.xadd(stream, {"json": line.rstrip(b"\n")})
            if k % 2000 == 0:
                pipe.execute()
        pipe.execute()

MASK = re.compile(r"^[^@]*")

def transform(record):  # bench/plugins/mask.lua, score.lua, city.lua, in that order
    record["email"] = MASK.sub("***", record["email"], count=1)
    record["score"] = record["score"] * 2
    record["count"] = record["count"] + 1
    record["city"] = record["city"].upper()
    record["adult"] = record["age"] >= 18
    return record

def peer(r, src, out, group, name, idle_ms=1000):
    try:
        r.xgroup_create(src, group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if not str(e).startswith("BUSYGROUP"):
            raise
    idle_since = None
    while True:
        reply = r.xreadgroup(group, name, {src: ">"}, count=1024, block=250)
        entries = reply[0][1] if reply else []
        if not entries:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= idle_ms / 1000:
                return
            continue
        idle_since = None
        pipe = r.pipeline(transaction=False)
        for entry_id, fields in entries:
            record = transform(json.loads(fields[b"json"]))
            pipe.xadd(out, {"json": json.dumps(record, separators=(",", ":")),
                            "source_id": entry_id, "source_index": 0})
        pipe.execute()
        r.xack(src, group, *[e[0] for e in entries])

def last(r, stream):
    entries = r.xrevrange(stream, count=1)
    ms = int(entries[0][0].split(b"-")[0]) if entries else 0
    print(ms, r.xlen(stream))

def canonical(text):
    record = json.loads(text)
    for k, v in record.items():  # 0.0 and 0 are one value (compare.py does the same)
        if isinstance(v, float) and v.is_integer():
            record[k] = int(v)
    return json.dumps(record, sort_keys=True)

def check(r, stream, path):
    want = sorted(canonical(line) for line in open(path, "rb"))
    got, start = [], "-"
    while True:
        entries = r.xrange(stream, min=start, count=10000)
        got += [canonical(fields[b"json"]) for _, fields in entries]
        if len(entries) < 10000:
            break
        start = "(" + entries[-1][0].decode()
    got.sort()
    if got != want:
        extra = len(set(got) - set(want))
        print(f"{stream}: {len(got)} records, {len(want)} expected, {extra} not in the file's output")
        sys.exit(1)
    print(f"{len(got)} records, the same as the file's")

if __name__ == "__main__":
    cmd, port, *args = sys.argv[1:]
    r = connect(port)
    {"fill": fill, "peer": peer, "last": last, "check": check}[cmd](r, *args)
