#!/usr/bin/python3
"""Summarizes run.sh's results.tsv: per scenario and proxy, medians over rounds, and the median
of the per-round ratios sticky-proxy / HAProxy (each ratio from runs of the same round, which ran
back to back). Then checks the project's targets. Usage: summarize.py results.tsv"""

import csv
import statistics
import sys
from collections import defaultdict

SCENARIO_NAMES = {
    "k10k": "10k keys, 64 conns",
    "k100k": "100k keys, 64 conns",
    "lat1c": "10k keys, 1 conn",
}
PROXY_NAMES = {"haproxy": "HAProxy 2.6", "sticky": "sticky-proxy"}


def median(values):
    return statistics.median(values) if values else float("nan")


def main(path):
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    by = defaultdict(list)  # (scenario, proxy) -> rows
    for r in rows:
        by[(r["scenario"], r["proxy"])].append(r)
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    proxies = list(dict.fromkeys(r["proxy"] for r in rows))

    def ratios(scen, field):
        """Per-round sticky/haproxy ratios of `field`."""
        hap = {r["round"]: float(r[field]) for r in by[(scen, "haproxy")]}
        out = []
        for r in by[(scen, "sticky")]:
            h = hap.get(r["round"])
            if h:
                out.append(float(r[field]) / h)
        return out

    header = (f"{'scenario':<21} {'proxy':<13} {'req/s':>8} {'x HAP':>6} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'x HAP':>6} {'max ms':>7} {'CPU us/req':>10} {'x HAP':>6} "
              f"{'peak RSS':>9} {'errors':>7}")
    print(header)
    print("-" * len(header))
    verdicts = []
    for scen in scenarios:
        for proxy in proxies:
            rs = by.get((scen, proxy))
            if not rs:
                continue
            rps = median([float(r["rps"]) for r in rs])
            p50 = median([float(r["p50_us"]) for r in rs]) / 1000
            p99 = median([float(r["p99_us"]) for r in rs]) / 1000
            mx = max(float(r["max_us"]) for r in rs) / 1000
            cpu = median([float(r["cpu_us_per_req"]) for r in rs])
            hwm = max(int(r["hwm_kb"]) for r in rs) / 1024
            errors = sum(int(r["errors"]) for r in rs)
            warm_errors = sum(int(r["warmup_errors"]) for r in rs)
            if proxy == "sticky" and ("haproxy" in proxies):
                rr, pr, cr = (median(ratios(scen, f)) for f in ("rps", "p99_us", "cpu_us_per_req"))
                rr_s, pr_s, cr_s = f"{rr:.2f}", f"{pr:.2f}", f"{cr:.2f}"
            else:
                rr_s = pr_s = cr_s = "1.00" if proxy == "haproxy" else "-"
            flag = "" if errors == 0 else "  << ERRORS"
            if warm_errors:
                flag += f"  (warm-up errors {warm_errors})"
            print(f"{SCENARIO_NAMES.get(scen, scen):<21} {PROXY_NAMES.get(proxy, proxy):<13} "
                  f"{rps:>8.0f} {rr_s:>6} {p50:>7.2f} {p99:>7.2f} {pr_s:>6} {mx:>7.1f} "
                  f"{cpu:>10.1f} {cr_s:>6} {hwm:>7.1f}MB {errors:>7}{flag}")
        print()

    if "haproxy" not in proxies or "sticky" not in proxies:
        return
    print("targets (median of per-round ratios sticky-proxy / HAProxy):")

    def check(label, ok, detail):
        print(f"  [{'MET' if ok else 'NOT MET'}] {label}: {detail}")

    def clean(scen):
        return all(int(r["errors"]) == 0 for p in proxies for r in by.get((scen, p), []))

    if by.get(("k10k", "sticky")):
        rr = median(ratios("k10k", "rps"))
        pr = median(ratios("k10k", "p99_us"))
        cr = median(ratios("k10k", "cpu_us_per_req"))
        check("10k keys: req/s >= 1.10x HAProxy", rr >= 1.10 and clean("k10k"), f"{rr:.2f}x")
        check("10k keys: p99 <= HAProxy's", pr <= 1.0, f"{pr:.2f}x")
        check("10k keys: CPU/request <= HAProxy's", cr <= 1.0, f"{cr:.2f}x")
    if by.get(("k100k", "sticky")):
        rr = median(ratios("k100k", "rps"))
        cr = median(ratios("k100k", "cpu_us_per_req"))
        check("100k keys: req/s >= 1.0x HAProxy", rr >= 1.0 and clean("k100k"), f"{rr:.2f}x")
        check("100k keys: CPU/request <= HAProxy's", cr <= 1.0, f"{cr:.2f}x")
    if by.get(("lat1c", "sticky")):
        pr = median(ratios("lat1c", "p99_us"))
        p5 = median(ratios("lat1c", "p50_us"))
        print(f"  [info] 1 connection: p50 {p5:.2f}x, p99 {pr:.2f}x HAProxy's")


if __name__ == "__main__":
    main(sys.argv[1])
