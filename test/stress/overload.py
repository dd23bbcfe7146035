#!/usr/bin/env python3
"""Overload figures for docs/security.md, measured on the real sticky-proxy. Prints, never asserts.

  idle      N keep-alive connections, each after one request, held open:
            memory per idle connection = (VmRSS after - VmRSS before) / N
  emfile    the proxy under a low RLIMIT_NOFILE, flooded with connections: CPU while accept()
            fails (a busy loop would use a whole core per worker), an existing keep-alive
            connection's answers, and how long until a new connection is served once the flood
            is closed
  body      one request body of N GiB streamed through the proxy to a backend that discards it:
            throughput and the proxy's peak RSS (VmHWM) against its RSS before

usage: test/stress/overload.py [--connections 10000] [--body-gib 1] [--emfile-files 256]
                               [--only idle,emfile,body] [--workers 2]
env:   STICKY_PROXY_BIN, STICKY_TEST_BACKEND_BIN (default: build/release, then build/dev)
The proxy and the backend are started here and stopped by PID on exit. The idle test needs
about --connections + 100 descriptors in this process (ulimit -n).
"""

import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHILDREN = []


def find_bin(env, rel):
    if os.environ.get(env):
        return os.environ[env]
    for build in ("build/release", "build/dev"):
        path = os.path.join(ROOT, build, rel)
        if os.access(path, os.X_OK):
            return path
    sys.exit(f"overload: no {rel} in build/release or build/dev; build it or set {env}")


def start(argv, log_path, max_files=None):
    def limit():
        if max_files:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

    log = open(log_path, "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)
    CHILDREN.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    CHILDREN.remove(proc)


def wait_port_in_log(log_path, pattern, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(log_path) as f:
            m = re.search(pattern, f.read())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    sys.exit(f"overload: '{pattern}' never appeared in {log_path}")


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(port, series):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    return None


def request(sock, path="/", key="stress"):
    """One keep-alive GET on `sock`; returns the status (reads the small response whole)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nclient-id: {key}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1])


class Setup:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.proxy_bin = find_bin("STICKY_PROXY_BIN", "proxy/sticky-proxy")
        backend_bin = find_bin("STICKY_TEST_BACKEND_BIN", "test/sticky-test-backend")
        log = os.path.join(tmp, "backend.log")
        self.backend = start([backend_bin, "--listen", "127.0.0.2:0", "--name", "b1"], log)
        self.backend_port = wait_port_in_log(log, r"listening on [0-9.]+:(\d+)")

    def proxy(self, name, limits, max_files=None):
        config = {
            "version": 1,
            "listen": "127.0.0.1:0",
            "limits": limits,
            "routes": [{"name": "stress/r", "header": "client-id",
                        "endpoints": [{"name": "b1", "address": "127.0.0.2",
                                       "port": self.backend_port}]}],
        }
        path = os.path.join(self.tmp, name + ".json")
        with open(path, "w") as f:
            json.dump(config, f)
        log = os.path.join(self.tmp, name + ".log")
        proc = start([self.proxy_bin, "--config", path, "--workers", str(self.args.workers),
                      "--metrics-listen", "127.0.0.1:0"], log, max_files)
        port = wait_port_in_log(log, r"listening on [0-9.]+:(\d+)")
        metrics_port = wait_port_in_log(log, r"metrics on [0-9.]+:(\d+)")
        return proc, port, metrics_port, log


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def idle_test(setup, n):
    proc, port, metrics_port, _ = setup.proxy(
        "idle", {"maxConnections": n + 1000, "keepAliveIdleTimeout": "10m"}, n + 1000)
    warm = [connect(port) for _ in range(100)]
    for s in warm:
        request(s)
    time.sleep(0.5)
    before = status_kb(proc.pid, "VmRSS")
    held = []
    t0 = time.time()
    for i in range(n):
        s = connect(port)
        if request(s, key=f"k{i}") != 200:
            sys.exit(f"overload: connection {i} was not answered 200")
        held.append(s)
    opened = time.time() - t0
    time.sleep(1)
    after = status_kb(proc.pid, "VmRSS")
    active = metric(metrics_port, "sticky_connections_active")
    print(f"idle: connections={n} active_metric={active:.0f} rss_before_kb={before} "
          f"rss_after_kb={after} bytes_per_idle_connection={(after - before) * 1024 / n:.0f} "
          f"open_and_request_s={opened:.1f}")
    for s in held + warm:
        s.close()
    stop(proc)


def emfile_test(setup, files):
    proc, port, metrics_port, log = setup.proxy("emfile", {"clientHeaderTimeout": "5m"}, files)
    keeper = connect(port)
    assert request(keeper) == 200
    flood = []
    for _ in range(4 * files):
        flood.append(socket.create_connection(("127.0.0.1", port)))
    deadline = time.time() + 10
    while "pausing accepts" not in open(log).read() and time.time() < deadline:
        time.sleep(0.05)
    cpu0, t0 = cpu_seconds(proc.pid), time.time()
    time.sleep(3)
    cpu = (cpu_seconds(proc.pid) - cpu0) / (time.time() - t0)
    lat = []
    for _ in range(20):
        t = time.time()
        status = request(keeper)
        lat.append((time.time() - t) * 1000)
        if status != 200:
            print(f"emfile: existing keep-alive connection got {status}")
    for s in flood:
        s.close()
    t = time.time()
    while True:
        try:
            with connect(port) as s:
                s.settimeout(2)
                if request(s, key="after") == 200:
                    break
        except OSError:
            pass
        time.sleep(0.01)
    recovered = time.time() - t
    fd_exhausted = metric(metrics_port, 'sticky_fd_exhausted_total{where="accept"}')
    lat.sort()
    print(f"emfile: rlimit_nofile={files} flood={len(flood)} cpu_while_exhausted={cpu:.3f}_cores "
          f"existing_conn_200s=20 existing_conn_median_ms={lat[10]:.2f} "
          f"existing_conn_max_ms={lat[-1]:.2f} new_conn_served_after_flood_closed_s={recovered:.2f} "
          f"accept_fd_exhausted_total={fd_exhausted:.0f}")
    keeper.close()
    stop(proc)


def body_test(setup, gib):
    proc, port, _, _ = setup.proxy("body", {}, None)
    s = connect(port)
    assert request(s) == 200
    before = status_kb(proc.pid, "VmRSS")
    total = gib << 30
    piece = b"x" * (1 << 20)
    s.sendall((f"POST /upload HTTP/1.1\r\nHost: x\r\nclient-id: body\r\n"
               f"Content-Length: {total}\r\n\r\n").encode())
    t0 = time.time()
    peak = before
    for i in range(total >> 20):
        s.sendall(piece)
        if i % 256 == 0:
            peak = max(peak, status_kb(proc.pid, "VmRSS"))
    data = b""
    while b"}" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    took = time.time() - t0
    got = re.search(rb'"bodyBytes":(\d+)', data)
    hwm = status_kb(proc.pid, "VmHWM")
    print(f"body: bytes={total} backend_received={got.group(1).decode() if got else '?'} "
          f"seconds={took:.1f} MiB_per_s={total / took / (1 << 20):.0f} rss_before_kb={before} "
          f"rss_peak_sampled_kb={peak} hwm_kb={hwm} hwm_minus_before_kb={hwm - before}")
    s.close()
    stop(proc)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--body-gib", type=int, default=1, help="10 for the full 10 GiB run")
    p.add_argument("--emfile-files", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", default="idle,emfile,body")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 200
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    with tempfile.TemporaryDirectory(prefix="sticky-stress.") as tmp:
        try:
            setup = Setup(args, tmp)
            tests = args.only.split(",")
            if "idle" in tests:
                idle_test(setup, args.connections)
            if "emfile" in tests:
                emfile_test(setup, args.emfile_files)
            if "body" in tests:
                body_test(setup, args.body_gib)
        finally:
            for proc in list(CHILDREN):
                stop(proc)


if __name__ == "__main__":
    main()
