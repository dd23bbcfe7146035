#!/usr/bin/env python3
"""A stand-in HTTP server for the `helm test` hook script's own test (test/chart/chart_test.sh).

It answers the way the proxy can answer, so every branch of the hook's script is exercised:
  /ok             200
  /no-route       404 (what the proxy answers when no StickyRoute matches)
  /not-ready      503 (what the proxy answers before it has a config)
  /need-headers   200 if the request carries `client-id: 42` and `Host: chat.example.com`,
                  else 404
Listens on 127.0.0.1 on a port the kernel picks and prints that port on stdout.
"""

import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ok":
            status = 200
        elif self.path == "/no-route":
            status = 404
        elif self.path == "/not-ready":
            status = 503
        elif self.path == "/need-headers":
            ok = (self.headers.get("client-id") == "42"
                  and self.headers.get("Host") == "chat.example.com")
            status = 200 if ok else 404
        else:
            status = 500
        body = f"status {status} for {self.path}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
