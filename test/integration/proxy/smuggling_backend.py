#!/usr/bin/env python3
"""A second, independent HTTP/1.1 parser for the smuggling test (smuggling_test.cc).

Python's http.server reads each request head; this handler reads the body by its own framing
(chunked when Transfer-Encoding ends in chunked, else Content-Length, else none) and appends
one JSON line per request to --log *before* answering, so every request it answered is logged:

  {"case": x-case header, "method": .., "target": .., "version": ..,
   "headers": [[name, value], ...] in arrival order, "framing": "length" | "chunked" | "none",
   "content_length_fields": N, "transfer_encoding_fields": N, "body": latin-1 text,
   "error": set when the body's framing was broken (the request is then refused with 400)}

Every answer is 200 "ok" with `X-Seen: python` (the test tells the backend's answers from the
proxy's own by it). Prints "listening on HOST:PORT" once it serves (port 0 picks one).
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_LOCK = threading.Lock()


class BodyError(Exception):
    pass


def read_line(rfile, limit=65536):
    line = rfile.readline(limit + 1)
    if len(line) > limit:
        raise BodyError("line too long")
    if not line.endswith(b"\r\n"):
        raise BodyError("line does not end in CRLF: %r" % line[:80])
    return line[:-2]


def read_chunked(rfile):
    body = bytearray()
    while True:
        line = read_line(rfile)
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise BodyError("bad chunk size %r" % line[:80])
        size = int(size_text, 16)
        if size == 0:
            break
        data = rfile.read(size)
        if len(data) != size:
            raise BodyError("body cut short")
        body += data
        if rfile.read(2) != b"\r\n":
            raise BodyError("chunk data not followed by CRLF")
    while read_line(rfile):  # trailer fields, up to the empty line
        pass
    return bytes(body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_path = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.serve
        raise AttributeError(name)

    def serve(self):
        headers = list(self.headers.items())
        te = [v for k, v in headers if k.lower() == "transfer-encoding"]
        cl = [v for k, v in headers if k.lower() == "content-length"]
        record = {
            "case": self.headers.get("x-case", ""),
            "method": self.command,
            "target": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in headers],
            "content_length_fields": len(cl),
            "transfer_encoding_fields": len(te),
        }
        error = None
        body = b""
        try:
            codings = [t.strip().lower() for v in te for t in v.split(",") if t.strip()]
            if te and codings and codings[-1] == "chunked":
                record["framing"] = "chunked"
                body = read_chunked(self.rfile)
            elif te:
                raise BodyError("Transfer-Encoding without chunked last: %r" % te)
            elif cl:
                record["framing"] = "length"
                if len(set(cl)) != 1 or not cl[0].isdigit():
                    raise BodyError("bad Content-Length %r" % cl)
                n = int(cl[0])
                body = bytearray()
                while len(body) < n:  # in pieces: n may exceed what one read() can take
                    piece = self.rfile.read(min(n - len(body), 1 << 20))
                    if not piece:
                        raise BodyError("body cut short")
                    body += piece
                body = bytes(body)
            else:
                record["framing"] = "none"
        except BodyError as e:
            error = str(e)
            record["error"] = error
        record["body"] = body.decode("latin-1")
        with LOG_LOCK, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        payload = b"ok" if error is None else error.encode("latin-1", "replace")
        self.send_response(200 if error is None else 400)
        self.send_header("X-Seen", "python")
        self.send_header("Content-Length", str(len(payload)))
        if error is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True, help="HOST:PORT (port 0 picks one)")
    parser.add_argument("--log", required=True, help="file to append one JSON line per request")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    Handler.log_path = args.log
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    print("listening on %s:%d" % server.server_address[:2], flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
