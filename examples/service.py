"""A small local service for the demo's enrichment step (examples/enrich.yaml): answers
GET /country/<code> after 5 ms with {"code", "name", "currency"}. Python's standard library
only. Listens on 127.0.0.1 on a free port and prints the port on its first line."""
import json, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTRIES = {
    "de": ("Germany", "EUR"), "us": ("United States", "USD"), "jp": ("Japan", "JPY"),
    "fr": ("France", "EUR"), "br": ("Brazil", "BRL"),
}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        time.sleep(0.005)
        code = self.path.rsplit("/", 1)[-1].lower()
        if self.path.startswith("/country/") and code in COUNTRIES:
            name, currency = COUNTRIES[code]
            status, body = 200, {"code": code, "name": name, "currency": currency}
        else:
            status, body = 404, {"error": "no such country"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
