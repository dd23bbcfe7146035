#!/usr/bin/python3
"""Call counts from a callgrind profile (callgrind_annotate --tree=caller).

  callgrind_calls.py PROFILE FUNCTION...           "FUNCTION<TAB>calls" per function: the sum
                                                   of the call counts of every edge into it
  callgrind_calls.py --callers PROFILE FUNCTION    its callers, most calls first, as
                                                   "calls<TAB>inclusive Ir<TAB>caller"
  callgrind_calls.py --categories PROFILE REQUESTS  own instructions per request grouped by
                                                   subsystem (allocator, locks, HTTP parser, ...)
  callgrind_calls.py --top PROFILE REQUESTS [N] [inclusive]
                                                   the N (default 25) costliest functions, own
                                                   (or inclusive) instructions per request
A FUNCTION matches the part after "file:" exactly, e.g. malloc, free,
"operator new(unsigned long)", "pthread_mutex_lock@@GLIBC_2.2.5". Caller names are shortened
(template arguments and parameter lists dropped) to stay readable."""

import re
import subprocess
import sys

CALLER_RE = re.compile(r"^\s*([\d,]+) \([\s\d.]+%\)\s+<\s+\S*?:(.*) \(([\d,]+)x\)(?: \[[^\]]*\])?$")
CALLEE_RE = re.compile(r"^\s*[\d,]+ \([\s\d.]+%\)\s+\*\s+\S*?:(.*?)(?: \[[^\]]*\])?$")


def shorten(name):
    """Drops template arguments and parameter lists: a::B<...>::f(...) -> a::B<>::f()."""
    out, depth = [], 0
    for ch in name:
        if ch in "<(":
            if depth == 0:
                out.append(ch)
            depth += 1
        elif ch in ">)":
            depth -= 1
            if depth == 0:
                out.append(ch)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def blocks(profile):
    """Yields (callee, [(calls, inclusive_ir, caller), ...]) per callee block."""
    text = subprocess.run(["callgrind_annotate", "--auto=no", "--tree=caller", "--threshold=100", profile],
                          capture_output=True, text=True, check=True).stdout
    callers = []
    for line in text.splitlines():
        m = CALLER_RE.match(line)
        if m:
            callers.append((int(m.group(3).replace(",", "")), int(m.group(1).replace(",", "")),
                            m.group(2).strip()))
            continue
        m = CALLEE_RE.match(line)
        if m:
            yield m.group(1).strip(), callers
        callers = []


FN_RE = re.compile(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(?:\S*?):(.*?)(?: \[([^\]]*)\])?$")


def top(profile, requests, n, inclusive):
    args = ["callgrind_annotate", "--auto=no", "--threshold=100", profile]
    if inclusive:
        args.insert(1, "--inclusive=yes")
    text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    shown = 0
    for line in text.splitlines():
        m = FN_RE.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        ir = int(m.group(1).replace(",", ""))
        obj = (m.group(4) or "").rsplit("/", 1)[-1]
        print(f"{ir / requests:9.0f} {float(m.group(2)):6.2f}%  {shorten(m.group(3))[:140]}  [{obj}]")
        shown += 1
        if shown >= n:
            break


# First match wins; matched against "file:function [object]".
CATEGORIES = [
    ("allocator (malloc/free/new/delete)",
     r"(^|:)(_int_malloc|_int_free|malloc|free|cfree|malloc_consolidate|tcache_\w+|"
     r"operator new|operator delete|unlink_chunk)\b"),
    ("mutex lock/unlock", r"pthread_mutex_|__lll_lock|__lll_unlock"),
    ("timers (asio timer queue, beast tcp_stream timeouts, Deadline)",
     r"timer_queue|schedule_timer|cancel_timer|basic_waitable_timer|wait_handler|"
     r"basic_stream<[^:]*>::timeout_handler|steady_timer|Deadline::"),
    ("HTTP parsing (beast basic_parser)", r"basic_parser|parse_field|basic_parsed_list|"
     r"detail::find_|parse_token|parse_crlf|token_list"),
    ("HTTP fields container (beast basic_fields, intrusive set)",
     r"basic_fields<[^>]*>::(?!writer)|bstree|rbtree|intrusive::|beast::(detail::)?iequals|field_table|string_to_field"),
    ("HTTP serializing / buffer sequences (beast serializer, buffers_cat, mp_with_index)",
     r"serializer<|buffers_cat|buffers_suffix|buffers_prefix|mp_with_index|buffers_range|"
     r"basic_fields<[^>]*>::writer|chunk_crlf|buffer_bytes|beast::detail::variant"),
    ("sticky-proxy's own code (routing, stick table, headers, connection logic)",
     r"sticky::"),
    ("asio/beast async machinery (scheduler, reactor, handlers, coroutine frames, executors)",
     r"boost::asio|boost::beast|awaitable|any_executor|executor_function|handler_work"),
    ("memcpy/memmove/memset/strings", r"mem(cpy|move|set|cmp|chr)|str(len|cmp|chr)|__strlen|"
     r"basic_string|char_traits"),
    ("libc system-call wrappers", r"sendmsg|recvmsg|epoll_wait|__libc_|syscall|clock_gettime"),
]


def categories(profile, requests):
    text = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", profile], capture_output=True,
                          text=True, check=True).stdout
    compiled = [(name, re.compile(rx)) for name, rx in CATEGORIES]
    sums = {name: 0 for name, _ in CATEGORIES}
    other = 0
    total = 0
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        rest = m.group(2)
        if "PROGRAM TOTALS" in rest:
            total = ir
            continue
        for name, rx in compiled:
            if rx.search(rest):
                sums[name] += ir
                break
        else:
            other += ir
    for name, ir in sorted(sums.items(), key=lambda kv: -kv[1]) + [("other", other)]:
        print(f"{ir / requests:9.0f} {100.0 * ir / max(total, 1):6.2f}%  {name}")
    print(f"{total / requests:9.0f} 100.00%  total instructions per request")


def main(argv):
    if argv and argv[0] == "--categories":
        categories(argv[1], float(argv[2]))
        return
    if argv and argv[0] == "--top":
        top(argv[1], float(argv[2]), int(argv[3]) if len(argv) > 3 else 25,
            len(argv) > 4 and argv[4] == "inclusive")
        return
    if argv and argv[0] == "--callers":
        profile, fn = argv[1], argv[2]
        rows = []
        for callee, callers in blocks(profile):
            if callee == fn:
                rows.extend(callers)
        for calls, ir, caller in sorted(rows, reverse=True):
            tag = re.search(r"thread_info_base::(\w+_tag)", caller)
            name = shorten(caller) + (f" [{tag.group(1)}]" if tag else "")
            print(f"{calls}\t{ir}\t{name}")
        return
    profile, wanted = argv[0], argv[1:]
    totals = {w: 0 for w in wanted}
    for callee, callers in blocks(profile):
        if callee in totals:
            totals[callee] += sum(c for c, _, _ in callers)
    for w in wanted:
        print(f"{w}\t{totals[w]}")


if __name__ == "__main__":
    main(sys.argv[1:])
