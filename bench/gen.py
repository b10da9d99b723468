import json, sys
n = int(sys.argv[1])
cities = ["Berlin", "Paris", "Tokyo", "Lima", "Oslo"]
with open(sys.argv[2], "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": 100000 + i, "name": "user_%06d" % i, "email": "user_%06d@example.com" % i,
            "city": cities[i % 5], "age": 18 + i % 50, "score": (i % 100) / 4, "balance": 0.5 + i % 7,
            "active": i % 2 == 0, "tags": ["alpha", "beta", "gamma"], "count": i % 10}, separators=(",", ":")) + "\n")
