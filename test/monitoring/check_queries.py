#!/usr/bin/env python3
"""The chart's alert and dashboard expressions against a running Prometheus, for
test/monitoring/monitoring_test.sh.

  check_queries.py extract RENDERED OUT_DIR
      From `helm template` output: OUT_DIR/rules.yaml (the PrometheusRule's spec, a plain rules
      file for promtool), OUT_DIR/dashboard.json (the dashboard ConfigMap's JSON) and
      OUT_DIR/scrape.json (the metrics Service's name and the ServiceMonitor's endpoints).
  check_queries.py prometheus-config SCRAPE_JSON PROXY_ADDR OPERATOR_ADDR NAMESPACE POD OUT
      A prometheus.yml scraping both at a 1s interval with the target labels Prometheus
      Operator gives a ServiceMonitor's targets (job, namespace, service, pod, endpoint), the
      endpoints' honorLabels, and their relabelings.
  check_queries.py query PROMETHEUS_URL RULES_YAML DASHBOARD_JSON JOB
      Queries every alert expression (its comparisons against numbers removed) and every metric
      selector in it, every dashboard panel target and template variable (with $job set to JOB,
      the other variables to ".+", so that the labels they select must exist, $__rate_interval to
      1m); prints one line per query and exits 1 if one does not parse or returns no series, if
      no series of an alert carries every label its annotations name ({{ $labels.X }}), or if no
      series of a variable's query carries the label the variable lists.
"""

import json
import re
import sys
import urllib.parse
import urllib.request

import yaml


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def extract(rendered, out):
    docs = load(rendered)
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    rule = kinds["PrometheusRule"][0]
    with open(f"{out}/rules.yaml", "w") as f:
        yaml.safe_dump(rule["spec"], f, sort_keys=False)
    dashboard = next(d for d in kinds["ConfigMap"] if d["metadata"]["name"].endswith("-dashboard"))
    (body,) = dashboard["data"].values()
    with open(f"{out}/dashboard.json", "w") as f:
        f.write(body)
    service = next(d for d in kinds["Service"] if d["metadata"]["name"].endswith("-metrics"))
    monitor = kinds["ServiceMonitor"][0]
    with open(f"{out}/scrape.json", "w") as f:
        json.dump({"service": service["metadata"]["name"],
                   "ports": {p["name"]: p["port"] for p in service["spec"]["ports"]},
                   "endpoints": monitor["spec"]["endpoints"]}, f)


def snake(name):
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name)


def prometheus_config(scrape_json, proxy, operator, namespace, pod, out):
    with open(scrape_json) as f:
        scrape = json.load(f)
    targets = {"metrics": proxy, "op-metrics": operator}
    jobs = []
    for e in scrape["endpoints"]:
        # What Prometheus Operator makes of a ServiceMonitor endpoint: the job is the Service's
        # name, the targets carry namespace/service/pod/endpoint, then the endpoint's relabelings.
        relabel = [{snake(k): v for k, v in r.items()} for r in e.get("relabelings", [])]
        jobs.append({
            "job_name": f"serviceMonitor/{namespace}/{e['port']}",
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "metrics_path": e.get("path", "/metrics"),
            "scheme": e.get("scheme", "http"),
            "honor_labels": bool(e.get("honorLabels", False)),
            "static_configs": [{"targets": [targets[e["port"]]],
                                "labels": {"namespace": namespace, "service": scrape["service"],
                                           "pod": pod, "endpoint": e["port"]}}],
            "relabel_configs": [{"target_label": "job", "replacement": scrape["service"]}] + relabel,
        })
    with open(out, "w") as f:
        yaml.safe_dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                        "scrape_configs": jobs}, f, sort_keys=False)


# Label lists of grouping and vector matching, range durations and strings hold no selector.
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\{[^}]*\})?')
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


def selectors(expr):
    """Every vector selector of EXPR, e.g. rate(x{a="b"}[5m]) / y -> ['x{a="b"}', 'y']."""
    found = []
    text = GROUPING.sub(" ", expr)
    for m in TOKEN.finditer(text):
        name = m.group(1)
        if not name or name.lower() in KEYWORDS:
            continue
        if re.match(r"\s*\(", text[m.end():]):
            continue  # a function or an aggregation
        selector = name + re.sub(r"\s+", " ", m.group(2) or "").strip()
        if selector not in found:
            found.append(selector)
    return found


COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*(bool\s+)?-?[0-9][0-9.]*(e[+-]?[0-9]+)?")


def without_comparisons(expr):
    """EXPR with its comparisons against numbers removed: what it compares."""
    return COMPARISON.sub("", expr)


def query(url, expr):
    """(error, result series) of an instant query."""
    data = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query", data, timeout=20) as r:
            answer = json.load(r)
    except urllib.error.HTTPError as e:
        try:
            answer = json.load(e)
        except ValueError:
            return f"HTTP {e.code}", []
    except OSError as e:
        return str(e), []
    if answer.get("status") != "success":
        return answer.get("error", "failed"), []
    result = answer["data"]["result"]
    return None, result if isinstance(result, list) else [{"metric": {}, "value": result}]


def dashboard_exprs(path, job):
    with open(path) as f:
        dashboard = json.load(f)

    def substitute(expr):
        expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
        expr = expr.replace("$job", job).replace("${job}", job)
        return re.sub(r"\$\{?(namespace|stickyroute)\}?", ".+", expr)

    out = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        for t in panel.get("targets", []):
            out.append((f"panel '{panel['title']}' {t['refId']}", substitute(t["expr"]), None))
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["definition"])
            if not m:
                out.append((f"variable {v['name']}", "unparsed: " + v["definition"]))
            else:
                out.append((f"variable {v['name']} (label {m.group(2)})", substitute(m.group(1)),
                            m.group(2)))
    return out


def check_queries(url, rules_path, dashboard_path, job):
    with open(rules_path) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    failed = []

    def run(what, expr, query_expr=None, labels=()):
        """Queries; LABELS: one series at least must carry each of them, not empty."""
        error, result = query(url, query_expr or expr)
        shown = query_expr or expr
        labelled = [r for r in result if all(r["metric"].get(n) for n in labels)]
        if error:
            failed.append(what)
            print(f"FAIL {what}: does not parse or evaluate: {error}\n       {shown}")
        elif not result:
            failed.append(what)
            print(f"FAIL {what}: no series\n       {shown}")
        elif not labelled:
            failed.append(what)
            print(f"FAIL {what}: no series has the labels {', '.join(labels)}: "
                  f"{[r['metric'] for r in result][:3]}\n       {shown}")
        else:
            print(f"ok   {what}: {len(result)} series"
                  f"{' with ' + ', '.join(labels) if labels else ''}: {shown}")

    queries = 0
    for r in rules:
        name = r.get("alert") or r.get("record")
        expr = r["expr"]
        # The whole expression must parse: query it as is (no series is fine: nothing fires).
        error, _ = query(url, expr)
        queries += 1
        if error:
            failed.append(f"alert {name}")
            print(f"FAIL alert {name}: does not parse: {error}\n       {expr}")
            continue
        compared = without_comparisons(expr)
        # The labels the annotations print must be on what the expression compares.
        named = sorted(set(re.findall(r"\$labels\.(\w+)", json.dumps(r.get("annotations", {})))))
        if compared != expr:
            queries += 1
            run(f"alert {name} (without its thresholds)", expr, compared, named)
        for s in selectors(expr):
            queries += 1
            run(f"alert {name}, selector", s)
    for what, expr, label in dashboard_exprs(dashboard_path, job):
        queries += 1
        run(what, expr, labels=(label,) if label else ())
        for s in selectors(expr):
            if s != expr:
                queries += 1
                run(f"{what}, selector", s)
    print(f"{queries} queries, {len(failed)} failed")
    return not failed


def main():
    args = sys.argv[1:]
    if args[:1] == ["extract"] and len(args) == 3:
        extract(args[1], args[2])
    elif args[:1] == ["prometheus-config"] and len(args) == 7:
        prometheus_config(*args[1:])
    elif args[:1] == ["query"] and len(args) == 5:
        sys.exit(0 if check_queries(*args[1:]) else 1)
    elif args[:1] == ["selectors"] and len(args) == 2:
        print("\n".join(selectors(args[1])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
