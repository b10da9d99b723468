# P6c/d peer: Python asyncio + aiohttp, the same enrichment with 64 requests in flight and
# output in input order. Usage: aiohttp_peer.py URL_PREFIX < in.jsonl > out.jsonl
import asyncio, json, sys
import aiohttp

async def main(prefix):
    records = [json.loads(l) for l in sys.stdin if l.strip()]
    sem = asyncio.Semaphore(64)
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def one(r):
            async with sem:
                async with session.get(prefix + str(r["id"])) as resp:
                    r["geo"] = await resp.json(content_type=None)
            return r
        out = await asyncio.gather(*(one(r) for r in records))
    w = sys.stdout.write
    for r in out:
        w(json.dumps(r, separators=(",", ":")) + "\n")

asyncio.run(main(sys.argv[1]))
