#!/usr/bin/python3
"""Calls into given functions, from a callgrind profile: sums the call counts of every caller
edge into each function (callgrind_annotate --tree=caller). Usage:
callgrind_calls.py callgrind.out FUNCTION...  -> one "FUNCTION<TAB>calls" line per function.
A FUNCTION matches the part after "file:" exactly, e.g. malloc, free,
"operator new(unsigned long)"."""

import re
import subprocess
import sys

text = subprocess.run(["callgrind_annotate", "--tree=caller", "--threshold=100", sys.argv[1]],
                      capture_output=True, text=True, check=True).stdout
wanted = sys.argv[2:]
totals = {w: 0 for w in wanted}
pending = 0
caller_re = re.compile(r"^\s*[\d,]+ \([\s\d.]+%\)\s+<\s.*\(([\d,]+)x\)")
callee_re = re.compile(r"^\s*[\d,]+ \([\s\d.]+%\)\s+\*\s+\S*?:(.*?)(?: \[[^\]]*\])?$")
for line in text.splitlines():
    m = caller_re.match(line)
    if m:
        pending += int(m.group(1).replace(",", ""))
        continue
    m = callee_re.match(line)
    if m:
        name = m.group(1).strip()
        if name in totals:
            totals[name] += pending
        pending = 0
        continue
    if not line.strip():
        pending = 0
for w in wanted:
    print(f"{w}\t{totals[w]}")
