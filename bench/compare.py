# Checks two outputs hold the same records (as JSON values; cjson loses key order and
# writes some floats differently, so values are compared, not bytes).
import json, sys
a, b = open(sys.argv[1]), open(sys.argv[2])
n = 0
for la, lb in zip(a, b):
    ra, rb = json.loads(la), json.loads(lb)
    for r in (ra, rb):
        for k, v in r.items():
            if isinstance(v, float) and v.is_integer(): r[k] = int(v)
    if ra != rb:
        print("outputs differ at record", n + 1, ra, rb); sys.exit(1)
    n += 1
print("outputs agree on", n, "records")
