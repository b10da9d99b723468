"""A small local HTTP service for the tests of HTTP plugins. Listens on 127.0.0.1 on a free
port and prints the port on its first line of stdout.

  GET /geo/<ip>            {"ip": <ip>, "country": "X<len>"}; after ?ms=N milliseconds
  GET /flaky/<key>         500 the first time a key is asked, then {"key": <key>, "ok": true}
  GET /fail                500 every time
  GET /text                200 with a body that is not JSON
  GET /big                 200 with a 10 MB JSON string; with ?pause=N, the first half, then
                           N milliseconds later the rest
  GET /redirect/<ip>       302 to /geo/<ip>
  POST /echo               the request body back, as JSON
"""
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs, unquote

seen = set()
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json", extra=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        if "ms" in q:
            time.sleep(int(q["ms"][0]) / 1000)
        parts = url.path.split("/")
        if url.path.startswith("/geo/"):
            ip = unquote(parts[2])
            self.send(200, {"ip": ip, "country": "X%d" % len(ip)})
        elif url.path.startswith("/flaky/"):
            key = parts[2]
            with lock:
                first = key not in seen
                seen.add(key)
            if first:
                self.send(500, {"error": "try again"})
            else:
                self.send(200, {"key": key, "ok": True})
        elif url.path == "/fail":
            self.send(500, {"error": "always"})
        elif url.path == "/text":
            self.send(200, b"this is not json", "text/plain")
        elif url.path == "/big" and "pause" in q:
            data = json.dumps("x" * (10 << 20)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            time.sleep(int(q["pause"][0]) / 1000)
            self.wfile.write(data[len(data) // 2:])
        elif url.path == "/big":
            self.send(200, json.dumps("x" * (10 << 20)).encode())
        elif url.path == "/drip":
            # A body of 1000 bytes sent a byte a second: no read ever waits long.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass
        elif url.path.startswith("/redirect/"):
            self.send(302, b"", "text/plain", [("Location", "/geo/" + parts[2])])
        else:
            self.send(404, {"error": "no such path"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.send(200, {"received": json.loads(body) if body else None})

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
