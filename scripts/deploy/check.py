"""Checks of the deployment kit that a schema cannot make (run by scripts/validate-deploy).

compose: every Apogee service runs a known role, sets only variables Apogee reads, probes the
role's own health port, and points at services and ports that exist; every ${VAR} the files
interpolate has a default or an error message and is documented in the README.
k8s/ and the Helm chart: each resource passes the Kubernetes schema (strict) or our local one;
probes, ports, env, selectors and references agree; the chart rendered like k8s/ has the same
resources, ports, probes and env names as k8s/.
"""

import json
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.37.0"

# Every variable the apogee binary reads (README "Configuration"; libs/config).
KNOWN_ENV = {
    "PORT", "ROOT_URL", "TEST_MODE", "ADMIN_USERNAME", "ADMIN_PASS", "ADMIN_EMAIL", "ADMIN_NAME",
    "MONGO_URL", "RUST_LOG", "APOGEE_HOST", "APOGEE_CONFIG", "APOGEE_DATA_DIR",
    "APOGEE_MAX_BODY_BYTES", "APOGEE_LOG_FORMAT", "APOGEE_SHUTDOWN_GRACE_SECS",
    "APOGEE_DDP_IDLE_SECS", "APOGEE_NATS_URL", "APOGEE_REDIS_URL", "APOGEE_REDIS_PREFIX",
    "APOGEE_PRESENCE_TTL_SECS", "APOGEE_AUTH_ADDRS", "APOGEE_MESSAGING_ADDRS", "APOGEE_FILES_ADDRS",
    "APOGEE_GRPC_LISTEN", "APOGEE_HEALTH_LISTEN", "APOGEE_CLUSTER_TOKEN",
    "APOGEE_RPC_TIMEOUT_MS", "APOGEE_NODE_ID",
}
# role -> (gRPC port or None, HTTP port of /livez and /readyz, its port name in k8s)
ROLES = {
    "serve": (None, 3000, "http"),
    "gateway": (None, 3000, "http"),
    "auth": (50051, 9101, "health"),
    "messaging": (50052, 9102, "health"),
    "presence": (None, 9103, "health"),
    "files": (50053, 9104, "health"),
}
CLUSTER_ROLES = ["gateway", "auth", "messaging", "presence", "files"]
# The variables naming the gRPC replicas of a role.
ADDRS = {"APOGEE_AUTH_ADDRS": "auth", "APOGEE_MESSAGING_ADDRS": "messaging", "APOGEE_FILES_ADDRS": "files"}

errors: list[str] = []


def fail(where: str, msg: str) -> None:
    errors.append(f"{where}: {msg}")


def known_env(name: str) -> bool:
    return name in KNOWN_ENV or name.startswith("OVERWRITE_SETTING_")


def host_port(url: str) -> tuple[str, int] | None:
    m = re.fullmatch(r"[a-z]+://(?:[^@/]*@)?([A-Za-z0-9.-]+):(\d+)(?:/.*)?", url)
    return (m.group(1), int(m.group(2))) if m else None


# ---------------------------------------------------------------- compose

INTERP = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")


def check_compose(path: Path, readme: str) -> None:
    text = path.read_text()
    where = path.name
    for name, rest in dict.fromkeys(INTERP.findall(text)):
        if not re.match(r"^(:?-|:?\?)", rest):
            fail(where, f"${{{name}}} has neither a default nor an error message")
        if f"`{name}" not in readme:
            fail(where, f"${{{name}}} is not documented in README.md")
    doc = yaml.safe_load(text)
    services = doc.get("services") or {}
    volumes = set((doc.get("volumes") or {}).keys())
    apogee = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("apogee:")}
    if not apogee:
        fail(where, "no service runs the apogee image")
    for name, svc in services.items():
        w = f"{where} service {name}"
        if "image" not in svc and "build" not in svc:
            fail(w, "neither image nor build")
        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                fail(w, f"depends on undefined service {dep}")
        for vol in svc.get("volumes") or []:
            src = vol.split(":")[0]
            if src.startswith("."):
                if not (ROOT / src).exists():
                    fail(w, f"bind mount {src} does not exist")
            elif src not in volumes:
                fail(w, f"volume {src} is not declared")
    roles: dict[str, list[str]] = {}
    for name, svc in apogee.items():
        w = f"{where} service {name}"
        cmd = svc.get("command") or ["serve"]
        role = cmd[0]
        if role not in ROLES:
            fail(w, f"unknown role {role!r}")
            continue
        roles.setdefault(role, []).append(name)
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = {e.split("=", 1)[0]: (e.split("=", 1)[1] if "=" in e else None) for e in env}
        for key in env:
            if not known_env(key):
                fail(w, f"sets {key}, which apogee does not read")
        grpc, http, _ = ROLES[role]
        if role in ("serve", "gateway"):
            port = int(env.get("PORT") or 3000)
        else:
            listen = env.get("APOGEE_HEALTH_LISTEN") or ""
            port = int(listen.rsplit(":", 1)[1]) if ":" in listen else http
            if port != http:
                fail(w, f"APOGEE_HEALTH_LISTEN {listen} is not the {role} health port {http}")
            if grpc and env.get("APOGEE_GRPC_LISTEN") != f"0.0.0.0:{grpc}":
                fail(w, f"APOGEE_GRPC_LISTEN should be 0.0.0.0:{grpc}")
        test = (svc.get("healthcheck") or {}).get("test") or []
        if test[:2] != ["CMD", "apogee-probe"] or test[2:] != [str(port), "/readyz"]:
            fail(w, f"healthcheck should be apogee-probe {port} /readyz, is {test}")
        for key, svc_role in ADDRS.items():
            for addr in filter(None, (env.get(key) or "").split(",")):
                hp = host_port(addr)
                target = services.get(hp[0]) if hp else None
                if not target or (target.get("command") or [None])[0] != svc_role:
                    fail(w, f"{key} {addr} is not a {svc_role} service")
                elif hp[1] != ROLES[svc_role][0]:
                    fail(w, f"{key} {addr} is not the {svc_role} gRPC port {ROLES[svc_role][0]}")
        for key in ("APOGEE_NATS_URL", "APOGEE_REDIS_URL", "MONGO_URL"):
            value = env.get(key) or ""
            m = INTERP.fullmatch(value)
            if m:  # ${MONGO_URL-default}: check the default
                value = m.group(2).lstrip(":-")
            hp = host_port(value) if value else None
            if value and (not hp or hp[0] not in services):
                fail(w, f"{key} {value} does not point at a service of this file")
    if path.name == "docker-compose.yml":
        for role in ("auth", "messaging", "presence", "files"):
            if len(roles.get(role, [])) != 1:
                fail(where, f"needs one {role} service, has {roles.get(role, [])}")
        if len(roles.get("gateway", [])) < 2:
            fail(where, "needs two gateways")
        nats = " ".join(services.get("nats", {}).get("command") or [])
        if "-js" not in nats.split():
            fail(where, "nats runs without JetStream (-js)")
        if "redis" not in services:
            fail(where, "no redis service")
        if "--replSet" not in (services.get("mongo", {}).get("command") or []):
            fail(where, "mongo is not started as a replica set")
        if "rs.initiate" not in json.dumps(services.get("mongo-init", {})):
            fail(where, "no mongo-init service running rs.initiate")
        check_nginx(services, where)
    else:
        if list(roles) != ["serve"] or len(services) != 1:
            fail(where, "the single variant runs exactly one service, apogee serve")


def check_nginx(services: dict, where: str) -> None:
    proxy = services.get("proxy") or {}
    confs = [v.split(":")[0] for v in proxy.get("volumes") or [] if v.endswith(".conf:ro")]
    if not confs:
        fail(where, "proxy mounts no nginx configuration")
        return
    conf = (ROOT / confs[0]).read_text()
    check_nginx_syntax(ROOT / confs[0])
    upstream = re.findall(r"^\s*server\s+([A-Za-z0-9_.-]+):(\d+)", conf, re.M)
    gateways = {n for n, s in services.items() if (s.get("command") or [None])[0] == "gateway"}
    if {h for h, _ in upstream} != gateways:
        fail(confs[0], f"upstream servers {sorted(h for h, _ in upstream)} are not the gateways {sorted(gateways)}")
    for host, port in upstream:
        if int(port) != 3000:
            fail(confs[0], f"{host}:{port} is not the gateway port 3000")
    for needle in ("proxy_set_header Upgrade $http_upgrade", "proxy_set_header Connection $connection_upgrade",
                   "proxy_http_version 1.1", "proxy_read_timeout"):
        if needle not in conf:
            fail(confs[0], f"missing `{needle}` (WebSocket upgrade)")


def check_nginx_syntax(path: Path) -> None:
    """crossplane (NGINX's own parser in Python) with nginx's directive table: unknown directives,
    wrong argument counts, directives in the wrong context. The file is a conf.d include, so it
    is parsed inside an http block."""
    import tempfile

    import crossplane

    with tempfile.TemporaryDirectory() as tmp:
        main = Path(tmp) / "nginx.conf"
        main.write_text(f"events {{}}\nhttp {{\n    include {path};\n}}\n")
        # The entries of a map block are values, not directives: strict mode must skip them.
        loose = crossplane.parse(str(main))
        map_lines = set()

        def walk(block: list, in_map: bool) -> None:
            for d in block:
                if in_map:
                    map_lines.add(d["line"])
                walk(d.get("block") or [], in_map or d["directive"] == "map")

        for cfg in loose["config"]:
            if cfg["file"] == str(path):
                walk(cfg["parsed"], False)
        strict = crossplane.parse(str(main), strict=True)
        for e in strict["errors"] + [x for x in loose["errors"] if x not in strict["errors"]]:
            if not (e["file"] == str(path) and e["line"] in map_lines and "unknown directive" in e["error"]):
                fail(path.name, e["error"])


# ---------------------------------------------------------------- Kubernetes

SM_SCHEMA = json.loads((Path(__file__).parent / "servicemonitor.schema.json").read_text())


def schema_validate(doc: dict, where: str) -> None:
    kind = doc.get("kind")
    try:
        if kind == "ServiceMonitor":
            jsonschema.validate(doc, SM_SCHEMA)
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except jsonschema.ValidationError as e:
        fail(where, f"{kind}/{doc.get('metadata', {}).get('name')}: {e.message} at {list(e.absolute_path)}")
    except Exception as e:  # schema not found, bad version: all failures
        fail(where, f"{kind}/{doc.get('metadata', {}).get('name')}: {type(e).__name__}: {e}")


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_manifests(docs: list[dict], where: str, secrets_optional: bool = False) -> None:
    deps = by_kind(docs, "Deployment")
    cms = by_kind(docs, "ConfigMap")
    secrets = by_kind(docs, "Secret")
    svcs = by_kind(docs, "Service")
    seen_roles = set()
    for name, d in deps.items():
        w = f"{where} Deployment/{name}"
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        role = labels.get("app.kubernetes.io/component")
        if role not in CLUSTER_ROLES:
            fail(w, f"component label {role!r} is not a role")
            continue
        seen_roles.add(role)
        if not matches(d["spec"]["selector"].get("matchLabels", {}), labels):
            fail(w, "selector does not match the pod labels")
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            fail(w, "pod securityContext.runAsNonRoot is not true")
        (c,) = pod["containers"]
        if c.get("args") != [role]:
            fail(w, f"args {c.get('args')} should be [{role!r}]")
        grpc, http, pname = ROLES[role]
        ports = {p["name"]: p["containerPort"] for p in c.get("ports") or []}
        want = {pname: http, **({"grpc": grpc} if grpc else {})}
        if ports != want:
            fail(w, f"ports {ports} should be {want}")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
            got = (c.get(probe) or {}).get("httpGet") or {}
            if got.get("path") != path or got.get("port") != pname:
                fail(w, f"{probe} should GET {path} on port {pname}, is {got}")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set((res.get(part) or {}).keys()):
                fail(w, f"resources.{part} needs cpu and memory")
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False \
                or (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            fail(w, "container securityContext must be read-only, no privilege escalation, drop ALL")
        if "/tmp" not in {m["mountPath"] for m in c.get("volumeMounts") or []}:
            fail(w, "no writable /tmp")
        env = {e["name"]: e for e in c.get("env") or []}
        for e in env.values():
            if not known_env(e["name"]):
                fail(w, f"sets {e['name']}, which apogee does not read")
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and not ref.get("optional"):
                s = secrets.get(ref["name"])
                if s is None and not secrets_optional:
                    fail(w, f"env {e['name']} reads Secret {ref['name']}, which is not defined")
                elif s is not None and ref["key"] not in {**(s.get("data") or {}), **(s.get("stringData") or {})}:
                    fail(w, f"env {e['name']} reads key {ref['key']} missing from Secret {ref['name']}")
        for src in c.get("envFrom") or []:
            ref = src.get("configMapRef")
            if ref and ref["name"] not in cms:
                fail(w, f"envFrom ConfigMap {ref['name']} is not defined")
        for key in ("APOGEE_CLUSTER_TOKEN", "APOGEE_NODE_ID"):
            if key not in env:
                fail(w, f"does not set {key}")
        if (env.get("APOGEE_NODE_ID", {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
            fail(w, "APOGEE_NODE_ID should come from the pod name (downward API)")
        if role == "gateway":
            if env.get("PORT", {}).get("value") != str(http):
                fail(w, f"PORT should be {http}")
        else:
            if env.get("APOGEE_HEALTH_LISTEN", {}).get("value") != f"0.0.0.0:{http}":
                fail(w, f"APOGEE_HEALTH_LISTEN should be 0.0.0.0:{http}")
            if grpc and env.get("APOGEE_GRPC_LISTEN", {}).get("value") != f"0.0.0.0:{grpc}":
                fail(w, f"APOGEE_GRPC_LISTEN should be 0.0.0.0:{grpc}")
        vols = {v["name"] for v in pod.get("volumes") or []}
        for m in c.get("volumeMounts") or []:
            if m["name"] not in vols:
                fail(w, f"mounts undefined volume {m['name']}")
    if seen_roles != set(CLUSTER_ROLES):
        fail(where, f"Deployments for {sorted(seen_roles)}, want {CLUSTER_ROLES}")

    def target(selector: dict, w: str) -> dict | None:
        hits = [d for d in deps.values() if matches(selector, d["spec"]["template"]["metadata"].get("labels", {}))]
        if len(hits) != 1:
            fail(w, f"selector {selector} matches {len(hits)} Deployments, want 1")
            return None
        return hits[0]

    for name, cm in cms.items():
        for key, value in (cm.get("data") or {}).items():
            if not known_env(key):
                fail(f"{where} ConfigMap/{name}", f"{key} is not a variable apogee reads")
            if key in ADDRS:
                role = ADDRS[key]
                for addr in value.split(","):
                    hp = host_port(addr)
                    svc = svcs.get(hp[0]) if hp else None
                    if not svc or hp[1] not in {p["port"] for p in svc["spec"]["ports"]} \
                            or svc["spec"]["selector"].get("app.kubernetes.io/component") != role:
                        fail(f"{where} ConfigMap/{name}", f"{key} {addr} is not a {role} Service port")
    headless = set()
    for name, svc in svcs.items():
        w = f"{where} Service/{name}"
        d = target(svc["spec"].get("selector") or {}, w)
        if d is None:
            continue
        cports = {p["name"] for p in d["spec"]["template"]["spec"]["containers"][0].get("ports") or []}
        for p in svc["spec"]["ports"]:
            if p.get("targetPort") not in cports:
                fail(w, f"targetPort {p.get('targetPort')} is not a container port of {d['metadata']['name']}")
        if svc["spec"].get("clusterIP") == "None":
            headless.add(svc["spec"]["selector"].get("app.kubernetes.io/component"))
    if headless != {"auth", "messaging", "files"}:
        fail(where, f"headless Services for {sorted(headless)}, want auth, messaging and files")
    for name, pdb in by_kind(docs, "PodDisruptionBudget").items():
        target(pdb["spec"]["selector"].get("matchLabels", {}), f"{where} PodDisruptionBudget/{name}")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    for name, hpa in hpas.items():
        ref = hpa["spec"]["scaleTargetRef"]
        d = deps.get(ref["name"])
        if ref["kind"] != "Deployment" or d is None \
                or d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") != "gateway":
            fail(f"{where} HorizontalPodAutoscaler/{name}", f"does not scale the gateway Deployment: {ref}")
        elif "replicas" in d["spec"]:
            fail(f"{where} Deployment/{ref['name']}", "sets replicas while an HPA owns them")
    for name, ing in by_kind(docs, "Ingress").items():
        w = f"{where} Ingress/{name}"
        ann = ing["metadata"].get("annotations") or {}
        if int(ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "0")) < 300:
            fail(w, "proxy-read-timeout below 300 s would cut idle WebSockets")
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                b = p["backend"]["service"]
                svc = svcs.get(b["name"])
                if not svc or b["port"].get("name") not in {x["name"] for x in svc["spec"]["ports"]}:
                    fail(w, f"backend {b} is not a Service port")
    for name, sm in by_kind(docs, "ServiceMonitor").items():
        w = f"{where} ServiceMonitor/{name}"
        hits = [s for s in svcs.values() if matches(sm["spec"]["selector"].get("matchLabels", {}), s["metadata"].get("labels", {}))]
        if not hits:
            fail(w, "selects no Service")
        for s in hits:
            if s["spec"]["selector"].get("app.kubernetes.io/component") != "gateway":
                fail(w, f"selects {s['metadata']['name']}, not a gateway Service")
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in {p["name"] for p in s["spec"]["ports"]}:
                    fail(w, f"endpoint port {ep.get('port')} is not a port of {s['metadata']['name']}")


def check_k8s() -> list[dict]:
    kdir = ROOT / "k8s"
    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    listed = kust.get("resources") or []
    files = sorted(p.name for p in kdir.glob("*.yaml") if p.name not in ("kustomization.yaml", "secret.example.yaml"))
    for f in listed:
        if not (kdir / f).is_file():
            fail("k8s/kustomization.yaml", f"lists {f}, which does not exist")
    for f in files:
        if f not in listed:
            fail("k8s/kustomization.yaml", f"does not list {f}")
    docs = []
    for p in sorted(kdir.glob("*.yaml")):
        if p.name == "kustomization.yaml":
            continue
        for d in load_docs(p.read_text()):
            schema_validate(d, f"k8s/{p.name}")
            docs.append(d)
    check_manifests(docs, "k8s/")
    secret = by_kind(docs, "Secret").get("apogee-secrets") or {}
    for key, value in (secret.get("stringData") or {}).items():
        if key in ("APOGEE_CLUSTER_TOKEN", "ADMIN_PASS", "MONGO_URL") and "CHANGE-ME" not in value:
            fail("k8s/secret.example.yaml", f"{key} must be a CHANGE-ME placeholder")
    return docs


# ---------------------------------------------------------------- Helm

LIKE_K8S = {
    "externalMongodbUrl": "mongodb://user:password@mongodb:27017/apogee?replicaSet=rs0",
    "ingress": {"enabled": True, "tls": [{"secretName": "apogee-tls", "hosts": ["chat.example.com"]}]},
    "prometheus": {"serviceMonitor": {"enabled": True}},
}


def render(values: dict) -> list[dict]:
    import helm_python as helm

    with helm.Chart.load(str(ROOT / "helm/apogee")) as chart:
        out = chart.render(values, name="apogee", namespace="apogee")
    docs = []
    for name, text in sorted(out.items()):
        if name.endswith(".yaml"):
            docs += load_docs(text)
        elif not name.endswith("NOTES.txt"):
            fail("helm", f"unexpected rendered file {name}")
    return docs


def summary(d: dict) -> dict:
    """What must agree between k8s/ and the chart for one resource."""
    kind, spec = d["kind"], d.get("spec") or {}
    if kind == "Deployment":
        pod = spec["template"]["spec"]
        c = pod["containers"][0]
        return {
            "args": c.get("args"), "ports": c.get("ports"), "envFrom": len(c.get("envFrom") or []),
            "env": sorted(e["name"] for e in c.get("env") or []),
            "readiness": c.get("readinessProbe"), "liveness": c.get("livenessProbe"),
            "lifecycle": c.get("lifecycle"), "resources": c.get("resources"),
            "securityContext": c.get("securityContext"), "podSecurityContext": pod.get("securityContext"),
            "mounts": c.get("volumeMounts"), "grace": pod.get("terminationGracePeriodSeconds"),
            "replicas": spec.get("replicas"), "strategy": spec.get("strategy"),
        }
    if kind == "Service":
        return {"ports": spec.get("ports"), "clusterIP": spec.get("clusterIP")}
    if kind == "ConfigMap":
        return {"keys": sorted((d.get("data") or {}).keys())}
    if kind in ("PodDisruptionBudget",):
        return {"maxUnavailable": spec.get("maxUnavailable")}
    if kind == "HorizontalPodAutoscaler":
        return {k: v for k, v in spec.items() if k != "scaleTargetRef"}
    if kind == "Ingress":
        return {"annotations": d["metadata"].get("annotations"), "rules": spec.get("rules"),
                "tls": spec.get("tls"), "class": spec.get("ingressClassName")}
    if kind == "ServiceMonitor":
        return {"endpoints": spec.get("endpoints")}
    return {}


def check_helm(k8s_docs: list[dict]) -> None:
    import helm_python as helm

    lint = helm.lint(str(ROOT / "helm/apogee"))
    for e in lint.get("errors") or []:
        fail("helm lint", str(e))
    for m in lint.get("messages") or []:
        if m.get("severity", 0) >= 2:  # 1 info, 2 warning, 3 error
            fail("helm lint", f"{m.get('path')}: {m.get('error')}")
    cases = {
        "defaults": {},
        "like k8s/": LIKE_K8S,
        "existing secrets": {"existingSecret": "my-apogee", "existingMongodbSecret": "my-mongo",
                             "autoscaling": {"enabled": False},
                             "extraEnv": [{"name": "OVERWRITE_SETTING_Site_Name", "value": "Chat"}]},
    }
    rendered = {}
    for label, values in cases.items():
        try:
            docs = render(values)
        except helm.HelmError as e:
            fail(f"helm ({label})", f"render failed: {e}")
            continue
        for d in docs:
            schema_validate(d, f"helm ({label})")
        check_manifests(docs, f"helm ({label})", secrets_optional=bool(values.get("existingSecret")))
        rendered[label] = docs
    # values.schema.json is in force: a misspelt key or a wrong type stops the install.
    for bad in ({"ingres": {"enabled": True}}, {"gateway": {"replicaCount": "three"}}, {"redis": {"url": "localhost"}}):
        try:
            render(bad)
            fail("helm values.schema.json", f"accepts {bad}")
        except helm.HelmError:
            pass
    if len(rendered) != len(cases):
        return
    # Defaults: SQLite (and local blobs), so one replica of auth, messaging and files on a claim each.
    deps = by_kind(rendered["defaults"], "Deployment")
    for role in ("auth", "messaging", "files"):
        d = deps.get(f"apogee-{role}", {})
        vols = {v["name"]: v for v in d.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", [])}
        if d.get("spec", {}).get("replicas") != 1 or "persistentVolumeClaim" not in vols.get("data", {}):
            fail("helm (defaults)", f"{role} without MongoDB should be one replica on a PersistentVolumeClaim")
    # Same resources as k8s/ (the Namespace and the example Secret are k8s/-only).
    ours = {(d["kind"], d["metadata"]["name"]): d for d in k8s_docs if d["kind"] not in ("Namespace", "Secret")}
    theirs = {(d["kind"], d["metadata"]["name"]): d for d in rendered["like k8s/"] if d["kind"] != "Secret"}
    for key in sorted(set(ours) | set(theirs)):
        if key not in theirs:
            fail("helm vs k8s/", f"{key[0]}/{key[1]} is in k8s/ but not in the chart")
        elif key not in ours:
            fail("helm vs k8s/", f"{key[0]}/{key[1]} is in the chart but not in k8s/")
        else:
            a, b = summary(ours[key]), summary(theirs[key])
            for field in a:
                if a[field] != b[field]:
                    fail("helm vs k8s/", f"{key[0]}/{key[1]} {field}: k8s/ {a[field]} != chart {b[field]}")


def check_kustomized(path: Path) -> None:
    """The output of `kubectl kustomize k8s`: what `kubectl apply -k` would send."""
    docs = load_docs(path.read_text())
    for d in docs:
        schema_validate(d, "kustomize build")
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != "apogee":
            fail("kustomize build", f"{d['kind']}/{d['metadata']['name']} is not in namespace apogee")
    for name, d in by_kind(docs, "Deployment").items():
        image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        if not re.fullmatch(r"[^:]+/apogee:[\w.-]+", image):
            fail("kustomize build", f"Deployment/{name} image {image} is not a tagged registry image")
    # The Secret is created out of band (secret.example.yaml), so references to it stay open.
    check_manifests(docs, "kustomize build", secrets_optional=True)
    print(f"kustomize build: {len(docs)} resources checked")


def finish() -> int:
    if errors:
        print(f"\n{len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--kustomized"]:
        check_kustomized(Path(sys.argv[2]))
        return finish()
    readme = (ROOT / "README.md").read_text()
    for f in ("docker-compose.yml", "docker-compose.single.yml"):
        check_compose(ROOT / f, readme)
    print("compose: checked services, roles, variables, ports, probes, nginx upstreams")
    k8s_docs = check_k8s()
    print(f"k8s/: {len(k8s_docs)} resources checked against Kubernetes {K8S_VERSION} schemas (strict)")
    check_helm(k8s_docs)
    print("helm: rendered (defaults, like k8s/, existing secrets), schema-checked, compared with k8s/; bad values refused")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
