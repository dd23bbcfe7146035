#!/usr/bin/env python3
"""A stand-in HTTP server for the `helm test` hook script's own test (test/chart/chart_test.sh).

It answers the way sticky-proxy can answer, so every branch of the hook's script is exercised:
  /readyz         200, or the status given as the first argument (e.g. 503: no config yet)
  /ok             200
  /no-route       404 "no route matches host H path P" (the proxy's answer when no route matches)
  /other-404      404 with another body (not the proxy's)
  /not-ready      503 "the proxy has no configuration loaded yet"
  /need-headers   200 if the request carries `client-id: 42` and `Host: chat.example.com`,
                  else the proxy's 404
Listens on 127.0.0.1 on a port the kernel picks and prints that port on stdout.
"""

import http.server
import sys

READYZ_STATUS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        no_route = (404, f"no route matches host {self.headers.get('Host')} path {self.path}")
        answers = {
            "/readyz": (READYZ_STATUS, "ready" if READYZ_STATUS == 200 else "not ready"),
            "/ok": (200, "hello from a pod"),
            "/no-route": no_route,
            "/other-404": (404, "not found"),
            "/not-ready": (503, "the proxy has no configuration loaded yet"),
        }
        if self.path == "/need-headers":
            ok = (self.headers.get("client-id") == "42"
                  and self.headers.get("Host") == "chat.example.com")
            status, text = (200, "routed by client-id") if ok else no_route
        else:
            status, text = answers.get(self.path, (500, "unexpected path " + self.path))
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
