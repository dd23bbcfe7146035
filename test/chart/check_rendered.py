#!/usr/bin/env python3
"""Assertions on `helm template` output of charts/kube-sticky, used by test/chart/chart_test.sh.

  check_rendered.py default        RENDERED RELEASE_NAMESPACE
  check_rendered.py namespaced     RENDERED RELEASE_NAMESPACE
  check_rendered.py shared-redis   RENDERED RELEASE_NAMESPACE   (values-shared-redis.yaml)
  check_rendered.py bundled-redis  RENDERED RELEASE_NAMESPACE   (values-bundled-redis.yaml)
  check_rendered.py parity         RENDERED RELEASE_NAMESPACE   (values-parity.yaml)
  check_rendered.py monitoring     RENDERED RELEASE_NAMESPACE   (values-monitoring.yaml)
  check_rendered.py podmonitor     RENDERED RELEASE_NAMESPACE   (values-podmonitor.yaml)
  check_rendered.py crd-copy    RENDERED_CRD SOURCE_CRD [keep|nokeep]

Prints one line per failed check and exits 1 if any failed.
"""

import base64
import hashlib
import json
import os
import re
import sys

import yaml

SOCKET_DIR = "/var/run/kube-sticky"
SOCKET = SOCKET_DIR + "/admin.sock"
REDIS_PASSWORD_DIR = "/etc/kube-sticky/redis"
REDIS_TLS_DIR = "/etc/kube-sticky/redis-tls"
REDIS_TLS_ARGS = ("--redis-tls", "--redis-tls-ca-file", "--redis-tls-cert-file",
                  "--redis-tls-key-file", "--redis-tls-server-name",
                  "--redis-tls-insecure-skip-verify")
REDIS_ARGS = ("--redis-address", "--redis-sentinels", "--redis-master-name", "--redis-username",
              "--redis-password-file", "--redis-key-prefix", "--redis-command-timeout",
              "--redis-connect-timeout") + REDIS_TLS_ARGS
CHECKSUM_ANNOTATION = "kubesticky.io/redis-password-checksum"
CRD_NAME = "stickyroutes.kubesticky.io"
DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "charts",
                         "kube-sticky", "dashboards", "kube-sticky.json")
# The alerts every PrometheusRule has; plus NoLeader with leader election, SharedTableDisconnected
# with a shared table.
ALERTS = {"KubeStickyNoActiveEndpoints", "KubeStickyConfigRejected", "KubeStickyOperatorPushFailing",
          "KubeStickyProxyConfigOutOfSync", "KubeStickySessionMoveRateHigh",
          "KubeStickySessionImbalance", "KubeStickyProxyDown", "KubeStickyOperatorDown",
          "KubeStickyOperatorReconcileErrors"}
MONITORING_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")
# The StickyRoute columns of `kubectl get -o wide` (priority 1), in order.
WIDE_COLUMNS = ["Port", "Hosts", "Path", "Placement", "Draining", "Accepted"]
CHART_LABELS = {"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                "app.kubernetes.io/managed-by"}
# Exactly the permissions the operator needs in a watched namespace (least privilege).
WATCH_RULES = {
    ("kubesticky.io", "stickyroutes", "", "get"),
    ("kubesticky.io", "stickyroutes", "", "list"),
    ("kubesticky.io", "stickyroutes", "", "watch"),
    ("kubesticky.io", "stickyroutes/status", "", "update"),
    ("kubesticky.io", "stickyroutes/status", "", "patch"),
    ("", "pods", "", "get"),
    ("", "pods", "", "list"),
    ("", "pods", "", "watch"),
    ("", "events", "", "create"),
    ("", "events", "", "patch"),
}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def is_redis(doc):
    return doc["metadata"]["name"].endswith("-redis")


def is_satellite(doc):
    """The bundled Redis's objects and the metrics Service, beside the release's main ones."""
    return is_redis(doc) or doc["metadata"]["name"].endswith("-metrics")


def one(docs, kind, name_suffix=""):
    """The one object of KIND named *NAME_SUFFIX; without a suffix, not the bundled Redis's nor
    the metrics Service."""
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)
             and (name_suffix or not is_satellite(d))]
    check(len(found) == 1, f"expected one {kind} named *{name_suffix}, found {len(found)}")
    return found[0] if found else None


def flat_rules(role):
    """The rules of a Role/ClusterRole as (group, resource, resourceName, verb) tuples."""
    out = set()
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for name in rule.get("resourceNames", [""]):
                    for verb in rule.get("verbs", []):
                        out.add((group, resource, name, verb))
    return out


def container(deployment, name):
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        if c["name"] == name:
            return c
    check(False, f"Deployment has no container {name}")
    return None


def arg_value(c, flag):
    args = c.get("args", [])
    if flag not in args:
        return None
    i = args.index(flag)
    return args[i + 1] if i + 1 < len(args) else ""


def check_common(docs, ns, shutdown_delay="5s", grace_seconds=45):
    deployment = one(docs, "Deployment")
    if deployment is None:
        report_and_exit()
    check(deployment["metadata"].get("namespace") == ns, "Deployment is not in the release namespace")
    pod = deployment["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["containers"]]
    check(names == ["sticky-proxy", "sticky-operator"],
          f"pod containers are {names}, expected sticky-proxy and sticky-operator")
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot is not true")
    check(psc.get("runAsUser") == 65532, "pod runAsUser is not 65532 (the image's user)")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          "pod seccompProfile is not RuntimeDefault")
    check(pod.get("terminationGracePeriodSeconds") == grace_seconds,
          f"terminationGracePeriodSeconds is {pod.get('terminationGracePeriodSeconds')}, "
          f"expected {grace_seconds}")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    check("emptyDir" in volumes.get("admin-socket", {}), "no emptyDir volume admin-socket")
    proxy = container(deployment, "sticky-proxy")
    operator = container(deployment, "sticky-operator")
    for c in (proxy, operator):
        if c is None:
            continue
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False,
              f"{c['name']}: allowPrivilegeEscalation is not false")
        check(sc.get("readOnlyRootFilesystem") is True, f"{c['name']}: root filesystem is writable")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"],
              f"{c['name']}: capabilities are not drop [ALL]")
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        check(mounts.get("admin-socket") == SOCKET_DIR,
              f"{c['name']}: admin-socket not mounted at {SOCKET_DIR}")
        check(arg_value(c, "--admin-socket") == SOCKET,
              f"{c['name']}: --admin-socket is {arg_value(c, '--admin-socket')!r}, not {SOCKET}")
        check(c.get("command", [""])[0] == "/usr/local/bin/" + c["name"],
              f"{c['name']}: command is not /usr/local/bin/{c['name']}")
        check("resources" in c, f"{c['name']}: no resources")
    if proxy is not None:
        check(arg_value(proxy, "--shutdown-delay") == shutdown_delay,
              f"proxy --shutdown-delay is {arg_value(proxy, '--shutdown-delay')!r}, "
              f"not {shutdown_delay}")
    if operator is not None:
        check(not any(a.startswith("--redis") for a in operator.get("args", [])),
              "operator got --redis-* flags (they are the proxy's)")
        check("redis-password" not in {m["name"] for m in operator.get("volumeMounts", [])},
              "operator mounts the Redis password")
        env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
               for e in operator.get("env", [])}
        check(env.get("POD_NAME") == "metadata.name", "operator: POD_NAME not from the downward API")
        check(env.get("POD_NAMESPACE") == "metadata.namespace",
              "operator: POD_NAMESPACE not from the downward API")
        check("--leader-elect" in operator.get("args", []), "operator: --leader-elect missing")
        # The operator's metrics and probes (operator.metrics, on by default).
        listen = arg_value(operator, "--metrics-listen")
        ports = {p["name"]: p["containerPort"] for p in operator.get("ports", [])}
        if listen == "0":
            check("op-metrics" not in ports and "livenessProbe" not in operator,
                  "operator: metrics disabled but a metrics port or probe rendered")
        else:
            check(listen == f"0.0.0.0:{ports.get('op-metrics')}",
                  f"operator: --metrics-listen {listen} does not match port op-metrics {ports}")
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                got = operator.get(probe, {}).get("httpGet", {})
                check(got.get("path") == path and got.get("port") == "op-metrics",
                      f"operator: {probe} is {got}, expected GET {path} on op-metrics")
        check(arg_value(operator, "--identity") == "$(POD_NAME)", "operator: --identity not POD_NAME")
        check(arg_value(operator, "--lease-namespace") == "$(POD_NAMESPACE)",
              "operator: --lease-namespace not POD_NAMESPACE")
    service = one(docs, "Service")
    sa = one(docs, "ServiceAccount")
    if sa is not None:
        check(pod.get("serviceAccountName") == sa["metadata"]["name"],
              "pod does not run as the chart's ServiceAccount")
    # Leader election: a Role in the release namespace for exactly one Lease.
    lease_role = one(docs, "Role", "-leader-election")
    if lease_role is not None and operator is not None:
        check(lease_role["metadata"].get("namespace") == ns, "lease Role not in the release namespace")
        lease = arg_value(operator, "--lease-name")
        check(flat_rules(lease_role) == {
            ("coordination.k8s.io", "leases", "", "create"),
            ("coordination.k8s.io", "leases", lease, "get"),
            ("coordination.k8s.io", "leases", lease, "update")},
            f"lease Role rules are not exactly create + get/update of lease {lease}: "
            f"{sorted(flat_rules(lease_role))}")
    check_bindings(docs, sa["metadata"]["name"] if sa else None, ns)
    test_pod = [d for d in by_kind(docs, "Pod")
                if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    check(len(test_pod) == 1, "no helm test hook Pod")
    check_metrics_service(docs, deployment, service, proxy, operator)
    return deployment, service, (proxy, operator)


def check_metrics_service(docs, deployment, service, proxy, operator):
    """The metrics ports are on the ClusterIP Service <fullname>-metrics only, whatever
    service.type is, and it has a port for each container that serves metrics."""
    if service is not None:
        names = [p["name"] for p in service["spec"]["ports"]]
        check(names == ["http"], f"the traffic Service has ports {names}, expected only http")
    expected = []
    if proxy is not None and arg_value(proxy, "--metrics-listen") is not None:
        expected.append(("metrics", int(arg_value(proxy, "--metrics-listen").rsplit(":", 1)[1])))
    listen = arg_value(operator, "--metrics-listen") if operator is not None else None
    if listen not in (None, "0"):
        expected.append(("op-metrics", int(listen.rsplit(":", 1)[1])))
    found = [d for d in by_kind(docs, "Service") if d["metadata"]["name"].endswith("-metrics")]
    if not expected:
        check(not found, "a metrics Service rendered although no container serves metrics")
        return None
    if not check(len(found) == 1, f"expected one metrics Service, found {len(found)}"):
        return None
    metrics = found[0]
    spec = metrics["spec"]
    check(spec.get("type") == "ClusterIP", f"the metrics Service is {spec.get('type')}, not ClusterIP")
    got = [(p["name"], p["port"]) for p in spec["ports"]]
    check(got == expected, f"metrics Service ports are {got}, expected {expected}")
    check(all(p["targetPort"] == p["name"] for p in spec["ports"]),
          "metrics Service ports do not target the containers' ports of the same name")
    check(spec["selector"] == deployment["spec"]["selector"]["matchLabels"],
          "metrics Service selector differs from the Deployment's")
    check(metrics["metadata"]["labels"].get("app.kubernetes.io/component") == "metrics",
          "metrics Service lacks app.kubernetes.io/component: metrics")
    return metrics


def check_bindings(docs, sa_name, ns):
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
             for d in docs if d["kind"] in ("Role", "ClusterRole")}
    for b in by_kind(docs, "RoleBinding") + by_kind(docs, "ClusterRoleBinding"):
        ref = b["roleRef"]
        role_ns = None if ref["kind"] == "ClusterRole" else b["metadata"].get("namespace")
        check((ref["kind"], role_ns, ref["name"]) in roles,
              f"{b['kind']} {b['metadata']['name']} refers to a missing {ref['kind']} {ref['name']}")
        check(b.get("subjects") == [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}],
              f"{b['kind']} {b['metadata']['name']} is not bound to exactly the chart's "
              f"ServiceAccount")


def check_probes(proxy, metrics):
    if proxy is None:
        return
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = proxy.get(probe, {})
        if metrics:
            check(p.get("httpGet") == {"path": path, "port": "metrics"},
                  f"proxy {probe} is not GET {path} on the metrics port: {p}")
        else:
            check(p.get("tcpSocket") == {"port": "http"},
                  f"proxy {probe} is not a TCP connect to the http port: {p}")


def check_no_shared_table(docs, deployment, proxy):
    """Without sharedTable: no --redis-* flag, no password volume, no bundled Redis objects."""
    if proxy is not None:
        present = [a for a in REDIS_ARGS if a in proxy.get("args", [])]
        check(not present, f"proxy got {present} without a shared table")
    volumes = {v["name"] for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
    check("redis-password" not in volumes, "redis-password volume without a shared table")
    check("redis-tls" not in volumes, "redis-tls volume without a shared table")
    redis = [f"{d['kind']} {d['metadata']['name']}" for d in docs if is_redis(d)]
    check(not redis, f"bundled Redis objects rendered although disabled: {redis}")
    check(not by_kind(docs, "Secret") and not by_kind(docs, "NetworkPolicy"),
          "a Secret or NetworkPolicy rendered without sharedTable.bundledRedis")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    check(CHECKSUM_ANNOTATION not in annotations, "password checksum annotation without Redis")


def password_volume(deployment, proxy):
    """The proxy's Redis password volume (a Secret), checked to be mounted read-only."""
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
    volume = volumes.get("redis-password")
    if not check(volume is not None and "secret" in volume, "no Secret volume redis-password"):
        return None
    mounts = {m["name"]: m for m in proxy.get("volumeMounts", [])}
    mount = mounts.get("redis-password", {})
    check(mount.get("mountPath") == REDIS_PASSWORD_DIR and mount.get("readOnly") is True,
          f"proxy does not mount redis-password read-only at {REDIS_PASSWORD_DIR}: {mount}")
    check(arg_value(proxy, "--redis-password-file") == REDIS_PASSWORD_DIR + "/password",
          f"proxy --redis-password-file is {arg_value(proxy, '--redis-password-file')!r}")
    return volume["secret"]


def check_default(docs, ns):
    deployment, service, (proxy, operator) = check_common(docs, ns)
    check_no_shared_table(docs, deployment, proxy)
    check(deployment["spec"]["replicas"] == 1, "default replicas is not 1")
    check(arg_value(operator, "--namespaces") == "all", "operator --namespaces is not 'all'")
    cluster_role = one(docs, "ClusterRole")
    if cluster_role is not None:
        check(flat_rules(cluster_role) == WATCH_RULES,
              f"ClusterRole rules differ from the operator's needs: "
              f"extra {sorted(flat_rules(cluster_role) - WATCH_RULES)}, "
              f"missing {sorted(WATCH_RULES - flat_rules(cluster_role))}")
    one(docs, "ClusterRoleBinding")
    watch_roles = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-operator")]
    check(not watch_roles, "cluster mode renders namespaced operator Roles")
    check(service["spec"]["type"] == "ClusterIP", "default Service is not ClusterIP")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    check(ports.get("http", {}).get("port") == 80 and ports["http"].get("targetPort") == "http",
          "Service http port is not 80 -> http")
    check(arg_value(proxy, "--metrics-listen") == "0.0.0.0:9090",
          "proxy --metrics-listen is not 0.0.0.0:9090")
    check(arg_value(proxy, "--listen") == "0.0.0.0:8080", "proxy --listen is not 0.0.0.0:8080")
    check(arg_value(proxy, "--workers") is None, "proxy --workers passed although workers is 0")
    check_probes(proxy, metrics=True)
    check(not by_kind(docs, "PodDisruptionBudget"), "PDB rendered although disabled")
    for kind in MONITORING_KINDS:
        check(not by_kind(docs, kind), f"a {kind} rendered by default")
    check(not dashboards(docs), "the dashboard ConfigMap rendered by default")
    check_parity_defaults(deployment, service, proxy, operator)
    crd = one(docs, "CustomResourceDefinition")
    if crd is not None:
        check(crd["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep",
              "CRD lacks helm.sh/resource-policy: keep although crds.keep is true")
        check_crd_columns(crd)


def check_parity_defaults(deployment, service, proxy, operator):
    """With the default values the parity options render nothing but revisionHistoryLimit 10."""
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    check(spec.get("revisionHistoryLimit") == 10,
          f"default revisionHistoryLimit is {spec.get('revisionHistoryLimit')}, expected 10")
    check("strategy" not in spec, f"a strategy rendered by default: {spec.get('strategy')}")
    for key in ("priorityClassName", "topologySpreadConstraints"):
        check(key not in pod, f"pod {key} rendered by default: {pod.get(key)}")
    check([v["name"] for v in pod.get("volumes", [])] == ["admin-socket"],
          f"default pod volumes are {[v['name'] for v in pod.get('volumes', [])]}")
    check("env" not in proxy, f"proxy env rendered by default: {proxy.get('env')}")
    check([e["name"] for e in operator.get("env", [])] == ["POD_NAME", "POD_NAMESPACE"],
          f"default operator env is {[e['name'] for e in operator.get('env', [])]}")
    for key in ("externalTrafficPolicy", "loadBalancerSourceRanges"):
        check(key not in service["spec"], f"Service {key} rendered by default")


def schema_has_path(schema, json_path):
    """Whether a printer column's jsonPath (.a.b, .a[?(...)].c) names a property of SCHEMA."""
    node = schema
    # A filter such as [?(@.type=="Ready")] selects array items: "[]" stands for it.
    for part in re.sub(r"\[[^\]]*\]", "[]", json_path).lstrip(".").split("."):
        name = part.split("[")[0]
        if name == "metadata" and node is schema:
            return True
        node = node.get("properties", {}).get(name)
        if node is None:
            return False
        if "[" in part:
            node = node.get("items", {})
    return True


def check_crd_columns(crd):
    """Category kube-sticky (not all) and the -o wide columns, each naming a schema property."""
    names = crd["spec"]["names"]
    check(names.get("categories") == ["kube-sticky"],
          f"CRD categories are {names.get('categories')}, expected [kube-sticky]")
    for version in crd["spec"]["versions"]:
        columns = version.get("additionalPrinterColumns", [])
        wide = [c["name"] for c in columns if c.get("priority", 0) == 1]
        check(wide == WIDE_COLUMNS, f"{version['name']}: -o wide columns are {wide}, "
              f"expected {WIDE_COLUMNS}")
        check(all(c.get("priority", 0) in (0, 1) for c in columns),
              f"{version['name']}: a printer column has a priority other than 0 or 1")
        schema = version["schema"]["openAPIV3Schema"]
        for c in columns:
            check(schema_has_path(schema, c["jsonPath"]),
                  f"{version['name']}: column {c['name']} reads {c['jsonPath']}, which the "
                  f"schema does not define")
            check(c["name"] == "Age" or c.get("description"),
                  f"{version['name']}: column {c['name']} has no description")


def check_namespaced(docs, ns):
    deployment, service, (proxy, operator) = check_common(docs, ns)
    check_no_shared_table(docs, deployment, proxy)
    check(deployment["spec"]["replicas"] == 3, "replicas is not 3")
    check(arg_value(operator, "--namespaces") == "shop,chat",
          f"operator --namespaces is {arg_value(operator, '--namespaces')!r}, not 'shop,chat'")
    check(arg_value(operator, "--lease-name") == "sticky-leader", "--lease-name is not sticky-leader")
    check(not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding"),
          "namespaced mode renders cluster-wide RBAC")
    watch_roles = {r["metadata"]["namespace"]: r for r in by_kind(docs, "Role")
                   if r["metadata"]["name"].endswith("-operator")}
    check(set(watch_roles) == {"shop", "chat"},
          f"operator Roles are in {sorted(watch_roles)}, expected chat and shop")
    for role_ns, role in watch_roles.items():
        check(flat_rules(role) == WATCH_RULES, f"Role in {role_ns} differs from the operator's needs")
    bound = {b["metadata"]["namespace"] for b in by_kind(docs, "RoleBinding")
             if b["metadata"]["name"].endswith("-operator")}
    check(bound == {"shop", "chat"}, f"operator RoleBindings are in {sorted(bound)}")
    check(service["spec"]["type"] == "NodePort", "Service is not NodePort")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    check(ports.get("http", {}).get("nodePort") == 30080, "Service http nodePort is not 30080")
    check(arg_value(proxy, "--metrics-listen") is None, "proxy --metrics-listen although metrics off")
    check(arg_value(proxy, "--workers") == "2", "proxy --workers is not 2")
    check_probes(proxy, metrics=False)
    pdb = one(docs, "PodDisruptionBudget")
    if pdb is not None:
        check(pdb["spec"].get("minAvailable") == 2, "PDB minAvailable is not 2")
        check(pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"],
              "PDB selector differs from the Deployment's")
    crd = one(docs, "CustomResourceDefinition")
    if crd is not None:
        check("helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {}),
              "CRD has the keep annotation although crds.keep is false")


def check_shared_redis(docs, ns):
    """values-shared-redis.yaml: Sentinel, ACL user, password from an existing Secret."""
    deployment, service, (proxy, operator) = check_common(docs, ns, shutdown_delay="20s",
                                                          grace_seconds=60)
    if proxy is None:
        return
    expected = {
        "--redis-sentinels": "redis-node-0.redis-headless.redis.svc:26379,"
                             "redis-node-1.redis-headless.redis.svc:26379,"
                             "redis-node-2.redis-headless.redis.svc:26379",
        "--redis-master-name": "mymaster",
        "--redis-username": "sticky",
        "--redis-key-prefix": "shop-sticky:",
        "--redis-command-timeout": "250ms",
        "--redis-connect-timeout": "1s",
    }
    for flag, value in expected.items():
        check(arg_value(proxy, flag) == value,
              f"proxy {flag} is {arg_value(proxy, flag)!r}, expected {value!r}")
    check(arg_value(proxy, "--redis-address") is None, "proxy --redis-address with sentinels")
    secret = password_volume(deployment, proxy)
    if secret is not None:
        check(secret.get("secretName") == "sticky-redis-auth",
              f"password volume is Secret {secret.get('secretName')!r}, not sticky-redis-auth")
        check(secret.get("items") == [{"key": "redis-password", "path": "password"}],
              f"password volume items are {secret.get('items')}, expected redis-password -> "
              f"password")
        # No fsGroup in this values file: the root-owned file must be readable by others.
        check(secret.get("defaultMode") == 0o444,
              f"password file mode is {oct(secret.get('defaultMode') or 0)} without an fsGroup, "
              f"expected 0o444")
    check_redis_tls(deployment, proxy)
    redis = [f"{d['kind']} {d['metadata']['name']}" for d in docs if is_redis(d)]
    check(not redis, f"bundled Redis objects rendered with an external Redis: {redis}")
    check(not by_kind(docs, "Secret"), "the chart renders a Secret with sharedTable.redis")


def check_redis_tls(deployment, proxy):
    """values-shared-redis.yaml's sharedTable.redis.tls: the flags name the files of the Secret
    volume redis-tls, mounted read-only in the proxy container only."""
    args = proxy.get("args", [])
    check("--redis-tls" in args, "proxy has no --redis-tls with sharedTable.redis.tls.enabled")
    check("--redis-tls-insecure-skip-verify" not in args,
          "proxy got --redis-tls-insecure-skip-verify, which the values do not ask for")
    expected = {
        "--redis-tls-ca-file": REDIS_TLS_DIR + "/ca.crt",
        "--redis-tls-cert-file": REDIS_TLS_DIR + "/tls.crt",
        "--redis-tls-key-file": REDIS_TLS_DIR + "/tls.key",
        "--redis-tls-server-name": "redis.redis.svc",
    }
    for flag, value in expected.items():
        check(arg_value(proxy, flag) == value,
              f"proxy {flag} is {arg_value(proxy, flag)!r}, expected {value!r}")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
    secret = volumes.get("redis-tls", {}).get("secret")
    if check(secret is not None, "no Secret volume redis-tls"):
        check(secret.get("secretName") == "sticky-redis-tls",
              f"redis-tls volume is Secret {secret.get('secretName')!r}, not sticky-redis-tls")
        check(secret.get("items") == [{"key": "ca.pem", "path": "ca.crt"},
                                      {"key": "client.pem", "path": "tls.crt"},
                                      {"key": "client-key.pem", "path": "tls.key"}],
              f"redis-tls volume items are {secret.get('items')}")
        check(secret.get("defaultMode") == 0o444,
              f"redis-tls file mode is {oct(secret.get('defaultMode') or 0)} without an fsGroup, "
              f"expected 0o444")
    mounts = {m["name"]: m for m in proxy.get("volumeMounts", [])}
    mount = mounts.get("redis-tls", {})
    check(mount.get("mountPath") == REDIS_TLS_DIR and mount.get("readOnly") is True,
          f"proxy does not mount redis-tls read-only at {REDIS_TLS_DIR}: {mount}")
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        if c["name"] != "sticky-proxy":
            check(all(m["name"] != "redis-tls" for m in c.get("volumeMounts", [])),
                  f"container {c['name']} mounts the Redis TLS files")


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_bundled_redis(docs, ns):
    """values-bundled-redis.yaml: the chart's own Redis, its Secret, Service and NetworkPolicy."""
    deployment, service, (proxy, operator) = check_common(docs, ns)
    if proxy is None:
        return
    redis_name = deployment["metadata"]["name"] + "-redis"
    check(arg_value(proxy, "--redis-address") == redis_name + ":6379",
          f"proxy --redis-address is {arg_value(proxy, '--redis-address')!r}, "
          f"expected {redis_name}:6379")
    for flag in ("--redis-sentinels", "--redis-master-name", "--redis-username"):
        check(arg_value(proxy, flag) is None, f"proxy {flag} with bundledRedis")
    check(arg_value(proxy, "--redis-key-prefix") == "sticky:", "proxy --redis-key-prefix not sticky:")
    check(arg_value(proxy, "--redis-command-timeout") == "100ms",
          "proxy --redis-command-timeout is not 100ms")
    check(arg_value(proxy, "--redis-connect-timeout") == "500ms",
          "proxy --redis-connect-timeout is not 500ms")
    secret_volume = password_volume(deployment, proxy)
    if secret_volume is not None:
        check(secret_volume.get("secretName") == redis_name,
              f"password volume is Secret {secret_volume.get('secretName')!r}, not {redis_name}")
        check(secret_volume.get("items") == [{"key": "password", "path": "password"}],
              f"password volume items are {secret_volume.get('items')}")
        check(secret_volume.get("defaultMode") == 0o440,
              f"password file mode is {oct(secret_volume.get('defaultMode') or 0)} with fsGroup "
              f"65532, expected 0o440")

    secret = one(docs, "Secret", "-redis")
    password = ""
    if secret is not None:
        password = base64.b64decode(secret.get("data", {}).get("password", "")).decode()
        check(len(password) == 32 and password.isalnum(),
              "the bundled Redis password is not 32 random alphanumerics")
    checksum = hashlib.sha256(password.encode()).hexdigest()
    redis_deployment = one(docs, "Deployment", "-redis")
    if redis_deployment is None:
        return
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    check(annotations.get(CHECKSUM_ANNOTATION) == checksum,
          "proxy pods' password checksum annotation is not the Secret's password's sha256")
    check(annotations.get("prometheus.io/scrape") == "true",
          "podAnnotations lost next to the checksum annotation")
    spec = redis_deployment["spec"]
    template = spec["template"]
    check((template["metadata"].get("annotations") or {}).get(CHECKSUM_ANNOTATION) == checksum,
          "Redis pod's password checksum annotation is not the Secret's password's sha256")
    check(spec.get("replicas") == 1, "bundled Redis replicas is not 1")
    check(spec.get("strategy", {}).get("type") == "Recreate", "bundled Redis strategy is not Recreate")
    redis_pod_labels = template["metadata"]["labels"]
    check(labels_match(spec["selector"]["matchLabels"], redis_pod_labels),
          "Redis Deployment selector does not match its pod labels")
    proxy_selector = deployment["spec"]["selector"]["matchLabels"]
    check(not labels_match(proxy_selector, redis_pod_labels),
          "the proxy Deployment's selector also selects the Redis pod")
    check(not labels_match(service["spec"]["selector"], redis_pod_labels),
          "the proxy Service also selects the Redis pod")
    check(not labels_match(spec["selector"]["matchLabels"],
                           deployment["spec"]["template"]["metadata"]["labels"]),
          "the Redis Deployment's selector also selects the proxy pods")
    pod = template["spec"]
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 999,
          f"Redis pod does not run as non-root user 999: {psc}")
    check(pod.get("automountServiceAccountToken") is False, "Redis pod mounts a token")
    containers = pod["containers"]
    check(len(containers) == 1, "Redis pod has more than one container")
    c = containers[0]
    check(c["image"] == "redis:7.2-alpine", f"Redis image is {c['image']}")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False,
          f"Redis container securityContext is not locked down: {sc}")
    args = c.get("args", [])
    check(arg_value(c, "--save") == "" and arg_value(c, "--appendonly") == "no",
          f"Redis keeps data on disk: args {args}")
    check(arg_value(c, "--maxmemory") == "100mb", "Redis --maxmemory is not 100mb")
    check(arg_value(c, "--port") == "6379", "Redis --port is not 6379")
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in c.get("env", [])}
    for name in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
        check(env.get(name) == {"name": redis_name, "key": "password"},
              f"Redis {name} is not the Secret's password: {env.get(name)}")
    check("requirepass" in " ".join(c.get("command", [])), "Redis is started without requirepass")
    readiness = " ".join(c.get("readinessProbe", {}).get("exec", {}).get("command", []))
    check("redis-cli" in readiness and "ping" in readiness,
          f"Redis readiness is not redis-cli ping: {readiness!r}")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    check(mounts.get("data") == "/data", "Redis has no writable /data")
    redis_service = one(docs, "Service", "-redis")
    if redis_service is not None:
        check(redis_service["spec"]["selector"] == spec["selector"]["matchLabels"],
              "Redis Service selector differs from the Redis Deployment's")
        check(redis_service["spec"]["ports"] == [{"name": "redis", "port": 6379,
                                                  "targetPort": "redis", "protocol": "TCP"}],
              f"Redis Service ports are {redis_service['spec']['ports']}")
    policy = one(docs, "NetworkPolicy", "-redis")
    if policy is not None:
        check(policy["spec"]["podSelector"]["matchLabels"] == spec["selector"]["matchLabels"],
              "NetworkPolicy does not select the Redis pod")
        ingress = policy["spec"].get("ingress", [])
        check(ingress == [{"from": [{"podSelector": {"matchLabels": proxy_selector}}],
                           "ports": [{"port": "redis", "protocol": "TCP"}]}],
              f"NetworkPolicy admits more than the proxy pods on port redis: {ingress}")
    for d in docs:
        if is_redis(d):
            check(d["metadata"].get("namespace") == ns,
                  f"{d['kind']} {d['metadata']['name']} is not in the release namespace")


PARITY_PROXY_ARGS = ["--log-format", "json"]
PARITY_OPERATOR_ARGS = ["--log-format=json"]
PARITY_MOUNT = {"name": "custom-ca", "mountPath": "/etc/ssl/custom", "readOnly": True}


def check_parity(docs, ns):
    """values-parity.yaml: every option added for chart parity, field by field."""
    deployment, service, (proxy, operator) = check_common(docs, ns)
    if proxy is None or operator is None:
        return
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    selector = spec["selector"]["matchLabels"]
    check(spec.get("revisionHistoryLimit") == 3,
          f"revisionHistoryLimit is {spec.get('revisionHistoryLimit')}, expected 3")
    check(spec.get("strategy") == {"type": "RollingUpdate",
                                   "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
          f"strategy is {spec.get('strategy')}")
    check(pod.get("priorityClassName") == "system-cluster-critical",
          f"priorityClassName is {pod.get('priorityClassName')!r}")
    # The first constraint has no labelSelector in the values: it gets the pods' selector; the
    # second keeps its own.
    check(pod.get("topologySpreadConstraints") == [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
         "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector}},
        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname",
         "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app.kubernetes.io/part-of": "kube-sticky"}}}],
        f"topologySpreadConstraints are {pod.get('topologySpreadConstraints')}")
    volumes = pod.get("volumes", [])
    check([v["name"] for v in volumes] == ["admin-socket", "redis-password", "custom-ca",
                                           "scratch"],
          f"pod volumes are {[v['name'] for v in volumes]}, expected the chart's then the extra")
    check(volumes[2:] == [{"name": "custom-ca",
                           "configMap": {"name": "custom-ca", "optional": True}},
                          {"name": "scratch", "emptyDir": {"sizeLimit": "16Mi"}}],
          f"extra volumes are {volumes[2:]}")
    # Extra args come after every flag the chart sets (the last of a repeated flag wins).
    check(proxy["args"][-2:] == PARITY_PROXY_ARGS and "--redis-address" in proxy["args"][:-2],
          f"proxy args do not end in {PARITY_PROXY_ARGS} after the chart's: {proxy['args']}")
    check(operator["args"][-1:] == PARITY_OPERATOR_ARGS and "--namespaces" in operator["args"],
          f"operator args do not end in {PARITY_OPERATOR_ARGS} after the chart's: "
          f"{operator['args']}")
    check(proxy.get("env") == [
        {"name": "TZ", "value": "UTC"},
        {"name": "CLUSTER_NAME", "valueFrom": {"configMapKeyRef": {
            "name": "cluster-info", "key": "name", "optional": True}}}],
        f"proxy env is {proxy.get('env')}")
    check(operator.get("env", [])[2:] == [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        f"operator extra env is {operator.get('env', [])[2:]}")
    check(proxy.get("volumeMounts", [])[2:] == [PARITY_MOUNT,
                                                {"name": "scratch", "mountPath": "/scratch"}],
          f"proxy extra volumeMounts are {proxy.get('volumeMounts', [])[2:]}")
    check(operator.get("volumeMounts", [])[1:] == [PARITY_MOUNT],
          f"operator extra volumeMounts are {operator.get('volumeMounts', [])[1:]}")

    check(service["spec"]["type"] == "LoadBalancer", "Service is not LoadBalancer")
    check(service["spec"].get("externalTrafficPolicy") == "Local",
          f"Service externalTrafficPolicy is {service['spec'].get('externalTrafficPolicy')!r}")
    check(service["spec"].get("loadBalancerSourceRanges") == ["203.0.113.0/24", "2001:db8::/32"],
          f"Service loadBalancerSourceRanges are {service['spec'].get('loadBalancerSourceRanges')}")

    pdb = one(docs, "PodDisruptionBudget")
    if pdb is not None:
        check(pdb["spec"].get("maxUnavailable") == "34%" and "minAvailable" not in pdb["spec"],
              f"PDB spec is {pdb['spec']}, expected maxUnavailable 34% and no minAvailable")

    check_parity_network_policy(docs, deployment)


def check_parity_network_policy(docs, deployment):
    """The proxy pods' NetworkPolicy, and the bundled Redis's beside it, unchanged."""
    policy = one(docs, "NetworkPolicy")
    if policy is None:
        return
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    test_pod = next(d for d in by_kind(docs, "Pod")
                    if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test")
    test_labels = test_pod["metadata"]["labels"]
    pod_selector = policy["spec"]["podSelector"]
    check(pod_selector == {"matchLabels": selector, "matchExpressions": [
        {"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["test"]}]},
        f"NetworkPolicy podSelector is {pod_selector}")
    check(labels_match(selector, pod_labels) and "app.kubernetes.io/component" not in pod_labels,
          "the NetworkPolicy does not select the proxy pods")
    check(test_labels.get("app.kubernetes.io/component") == "test",
          "the helm test Pod is not told apart by app.kubernetes.io/component: test")
    test_peer = {"podSelector": {"matchLabels": {**selector,
                                                 "app.kubernetes.io/component": "test"}}}
    check(labels_match(test_peer["podSelector"]["matchLabels"], test_labels),
          "the test Pod peer does not select the helm test Pod")
    check(policy["spec"].get("policyTypes") == ["Ingress", "Egress"],
          f"policyTypes are {policy['spec'].get('policyTypes')} with egress rules")
    check(policy["spec"].get("ingress") == [
        {"ports": [{"port": "http", "protocol": "TCP"}],
         "from": [{"namespaceSelector": {"matchLabels": {
             "kubernetes.io/metadata.name": "ingress"}}}, test_peer]},
        {"ports": [{"port": "metrics", "protocol": "TCP"}],
         "from": [{"namespaceSelector": {"matchLabels": {
             "kubernetes.io/metadata.name": "monitoring"}},
             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
             test_peer]},
        # The operator's metrics port, from the same monitoring peers (no helm test Pod).
        {"ports": [{"port": "op-metrics", "protocol": "TCP"}],
         "from": [{"namespaceSelector": {"matchLabels": {
             "kubernetes.io/metadata.name": "monitoring"}},
             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]}],
        f"NetworkPolicy ingress is {policy['spec'].get('ingress')}")
    redis_deployment = one(docs, "Deployment", "-redis")
    redis_selector = redis_deployment["spec"]["selector"]["matchLabels"] if redis_deployment else {}
    check(policy["spec"].get("egress") == [
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/12"]}}],
         "ports": [{"port": 8080, "protocol": "TCP"}, {"port": "http-alt", "protocol": "TCP"}]},
        {"to": [{"podSelector": {"matchLabels": redis_selector}}],
         "ports": [{"port": 6379, "protocol": "TCP"}]},
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}],
        f"NetworkPolicy egress is not the values' rule, then the bundled Redis and DNS: "
        f"{policy['spec'].get('egress')}")
    redis_policy = one(docs, "NetworkPolicy", "-redis")
    if redis_policy is not None:
        check(redis_policy["spec"]["ingress"] == [
            {"from": [{"podSelector": {"matchLabels": selector}}],
             "ports": [{"port": "redis", "protocol": "TCP"}]}],
            f"the bundled Redis's NetworkPolicy changed: {redis_policy['spec']['ingress']}")
        check(labels_match(selector, pod_labels),
              "the bundled Redis's NetworkPolicy no longer admits the proxy pods")


def dashboards(docs):
    return [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]


def check_scrape_endpoints(endpoints, metrics_name, interval, timeout):
    """The proxy's and the operator's endpoint of a ServiceMonitor or PodMonitor."""
    check([e.get("port") for e in endpoints] == ["metrics", "op-metrics"],
          f"scrape endpoints are {[e.get('port') for e in endpoints]}")
    # The proxy's own namespace/pod labels (route, backend pod) win; the operator's have none.
    check([e.get("honorLabels") for e in endpoints] == [True, False],
          f"honorLabels are {[e.get('honorLabels') for e in endpoints]}, expected proxy only")
    for e in endpoints:
        check(e.get("path") == "/metrics", f"{e.get('port')}: path {e.get('path')}")
        check(e.get("interval") == interval and e.get("scrapeTimeout") == timeout,
              f"{e.get('port')}: interval {e.get('interval')} timeout {e.get('scrapeTimeout')}, "
              f"expected {interval} {timeout}")
        relabel = (e.get("relabelings") or [{}])[0]
        check(relabel == {"targetLabel": "job", "replacement": metrics_name},
              f"{e.get('port')}: first relabeling {relabel} does not set job {metrics_name}")


def check_prometheus_rule(rule, metrics_name, expected_alerts):
    """The alerts, each selecting the release's job; returns {alert: expr}."""
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    exprs = {r["alert"]: r["expr"] for r in rules}
    check(set(exprs) == expected_alerts, f"alerts are {sorted(exprs)}, expected "
          f"{sorted(expected_alerts)}")
    for name, expr in exprs.items():
        check(f'job="{metrics_name}"' in expr, f"{name} does not select job {metrics_name}: {expr}")
    for r in rules:
        check(r.get("labels", {}).get("severity") in ("warning", "critical"),
              f"{r['alert']}: severity {r.get('labels')}")
        check(r.get("annotations", {}).get("summary") and r["annotations"].get("description"),
              f"{r['alert']}: no summary or description")
        check("{{ $labels." in r["annotations"].get("description", ""),
              f"{r['alert']}: the description names no label ({{{{ $labels... }}}} not kept)")
    return exprs


def check_monitoring(docs, ns):
    """values-monitoring.yaml: ServiceMonitor, PrometheusRule and dashboard with every knob."""
    deployment, service, (proxy, operator) = check_common(docs, ns)
    check(service["spec"]["type"] == "LoadBalancer", "the traffic Service is not LoadBalancer")
    metrics = check_metrics_service(docs, deployment, service, proxy, operator)
    if metrics is None:
        return
    name = metrics["metadata"]["name"]
    check(metrics["metadata"].get("annotations") == {"prometheus.io/scrape": "true"},
          f"metrics Service annotations are {metrics['metadata'].get('annotations')}")
    check(not by_kind(docs, "PodMonitor"), "a PodMonitor rendered with podMonitor disabled")
    monitor = one(docs, "ServiceMonitor")
    if monitor is not None:
        meta = monitor["metadata"]
        check(meta.get("namespace") == "monitoring", f"ServiceMonitor in {meta.get('namespace')}")
        check(meta["labels"].get("release") == "kube-prometheus-stack",
              "ServiceMonitor lacks additionalLabels")
        spec = monitor["spec"]
        check(spec.get("namespaceSelector") == {"matchNames": [ns]},
              f"ServiceMonitor namespaceSelector {spec.get('namespaceSelector')}")
        # The metrics Service's labels, including the component the traffic Service lacks.
        check(spec["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
              and "app.kubernetes.io/component" in spec["selector"]["matchLabels"],
              "ServiceMonitor does not select the metrics Service (and only it)")
        endpoints = spec.get("endpoints", [])
        check_scrape_endpoints(endpoints, name, "15s", "5s")
        for e in endpoints:
            check(e.get("relabelings", [])[1:] == [{"sourceLabels": ["__meta_kubernetes_pod_node_name"],
                                                   "targetLabel": "node"}],
                  f"{e.get('port')}: relabelings {e.get('relabelings')}")
            check(e.get("metricRelabelings") == [{"sourceLabels": ["__name__"], "regex": "process_.*",
                                                 "action": "drop"}],
                  f"{e.get('port')}: metricRelabelings {e.get('metricRelabelings')}")
    rule = one(docs, "PrometheusRule")
    if rule is not None:
        check(rule["metadata"].get("namespace") == ns, "PrometheusRule not in the release namespace")
        check(rule["metadata"]["labels"].get("release") == "kube-prometheus-stack",
              "PrometheusRule lacks additionalLabels")
        exprs = check_prometheus_rule(rule, name, ALERTS | {"KubeStickyOperatorNoLeader"})
        for alert, threshold in (("KubeStickyNoActiveEndpoints", "> 0.5"),
                                 ("KubeStickyOperatorPushFailing", "> 2"),
                                 ("KubeStickySessionMoveRateHigh", "> 5"),
                                 ("KubeStickySessionImbalance", "> 4"),
                                 ("KubeStickySessionImbalance", "> 50"),
                                 ("KubeStickyOperatorReconcileErrors", "> 0.25")):
            check(threshold in exprs.get(alert, ""), f"{alert} lacks its threshold '{threshold}'")
    found = dashboards(docs)
    if check(len(found) == 1, f"expected one dashboard ConfigMap, found {len(found)}"):
        meta = found[0]["metadata"]
        check(meta.get("namespace") == "monitoring", f"dashboard ConfigMap in {meta.get('namespace')}")
        check(meta["labels"].get("grafana_dashboard_kube") == "yes"
              and "grafana_dashboard" not in meta["labels"],
              f"dashboard ConfigMap labels {meta['labels']}")
        check(meta.get("annotations") == {"grafana_folder": "kube-sticky"},
              f"dashboard ConfigMap annotations {meta.get('annotations')}")
        with open(DASHBOARD) as f:
            shipped = json.load(f)
        try:
            got = json.loads(found[0]["data"]["kube-sticky.json"])
        except (KeyError, ValueError) as e:
            got = f"unreadable: {e}"
        check(got == shipped, "the dashboard ConfigMap does not hold dashboards/kube-sticky.json")


def check_podmonitor(docs, ns):
    """values-podmonitor.yaml: a PodMonitor, and the rule with a shared table."""
    deployment, service, (proxy, operator) = check_common(docs, ns)
    metrics = check_metrics_service(docs, deployment, service, proxy, operator)
    check(not by_kind(docs, "ServiceMonitor"), "a ServiceMonitor rendered with it disabled")
    check(not dashboards(docs), "a dashboard ConfigMap rendered with it disabled")
    monitor = one(docs, "PodMonitor")
    if monitor is None or metrics is None:
        return
    name = metrics["metadata"]["name"]
    spec = monitor["spec"]
    check(monitor["metadata"].get("namespace") == ns, "PodMonitor not in the release namespace")
    selector = spec.get("selector", {})
    check(selector.get("matchLabels") == deployment["spec"]["selector"]["matchLabels"],
          "PodMonitor does not select the Deployment's pods")
    check({"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["test"]}
          in selector.get("matchExpressions", []), "PodMonitor selects the helm test Pod")
    check_scrape_endpoints(spec.get("podMetricsEndpoints", []), name, "30s", None)
    rule = one(docs, "PrometheusRule")
    if rule is not None:
        check_prometheus_rule(rule, name, ALERTS | {"KubeStickyOperatorNoLeader",
                                                    "KubeStickySharedTableDisconnected"})


def check_crd_copy(rendered_path, source_path, keep):
    rendered = load(rendered_path)
    source = load(source_path)
    if not check(len(rendered) == 1 and len(source) == 1,
                 f"expected one CRD in each, got {len(rendered)} rendered and {len(source)} in "
                 f"the source"):
        return
    crd, src = rendered[0], source[0]
    meta = crd["metadata"]
    annotations = meta.pop("annotations", None) or {}
    if keep:
        check(annotations == {"helm.sh/resource-policy": "keep"},
              f"rendered CRD annotations are {annotations}, expected only the keep policy")
    else:
        check(annotations == {}, f"rendered CRD has annotations {annotations} with crds.keep=false")
    labels = meta.get("labels", {})
    for key in CHART_LABELS:
        check(key in labels, f"rendered CRD lacks the chart label {key}")
        labels.pop(key, None)
    if not labels:
        meta.pop("labels", None)
    check(crd == src, "the chart's CRD, less the chart's labels and keep annotation, differs from "
          "crds/stickyroutes.kubesticky.io.yaml; run scripts/sync-chart-crd.sh")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    modes = {"default": check_default, "namespaced": check_namespaced,
             "shared-redis": check_shared_redis, "bundled-redis": check_bundled_redis,
             "parity": check_parity, "monitoring": check_monitoring,
             "podmonitor": check_podmonitor}
    if mode in modes and len(sys.argv) == 4:
        modes[mode](load(sys.argv[2]), sys.argv[3])
    elif mode == "crd-copy" and len(sys.argv) == 5:
        check_crd_copy(sys.argv[2], sys.argv[3], sys.argv[4] == "keep")
    else:
        sys.exit(__doc__)
    report_and_exit()


def report_and_exit():
    for f in failures:
        print(f"  check failed: {f}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
