"""Checks deploy/helm/portcullis for scripts/check-deploy.sh.

With Helm v4's Go SDK (helm-python-sdk): lint --strict, then render the chart for each
case (default values, and every ci/*.yaml values file); every rendered manifest is
checked for duplicate keys and validated against the Kubernetes JSON schemas
(kubernetes-validate, strict: no unknown fields) of each version asked for, except the
ServiceMonitor (a CRD), which goes to the Prometheus Operator's schema through node
(servicemonitor.mjs). Then the chart's own promises are checked on the objects
(security context, probes, the worker switch, selectors, references, generated keys),
and the refusals (several replicas or a worker on SQLite, invalid values) must happen.

Usage: python chart.py CHART_DIR OUT_DIR NODE_DIR KUBE_VERSION...
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

RELEASE = "pc"
NAMESPACE = "registry"
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
failures: list[str] = []


def fail(case: str, message: str) -> None:
    failures.append(f"{case}: {message}")
    print(f"FAIL {case}: {message}")


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice (the API server does)."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping
)


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        ["openssl", *args], input=stdin, check=True, capture_output=True
    ).stdout


def token_pair() -> tuple[str, str]:
    """A throwaway ES256 key and self-signed certificate for the full-values case."""
    with tempfile.TemporaryDirectory() as d:
        key, crt = Path(d, "k"), Path(d, "c")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
        openssl("req", "-new", "-x509", "-key", str(key), "-out", str(crt), "-days", "30",
                "-subj", "/CN=check-deploy token signer")
        return key.read_text(), crt.read_text()


def public_key_of(pem: bytes, kind: str) -> bytes:
    if kind == "cert":
        return openssl("x509", "-noout", "-pubkey", stdin=pem)
    return openssl("pkey", "-pubout", stdin=pem)


def render(chart: helm.Chart, values: dict | None) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def documents(case: str, rendered: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            if not text.strip():
                fail(case, "NOTES.txt is empty")
            continue
        try:
            for doc in yaml.load_all(text, Loader=UniqueKeyLoader):
                if doc:
                    doc["__source__"] = path
                    docs.append(doc)
        except yaml.YAMLError as e:
            fail(case, f"{path}: not valid YAML: {e}")
    return docs


def strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "__source__"}


def validate_schemas(case: str, docs: list[dict], versions: list[str], node_dir: str) -> None:
    crds = []
    for doc in docs:
        kind, api = doc.get("kind"), doc.get("apiVersion")
        name = f"{kind}/{doc.get('metadata', {}).get('name')} ({doc['__source__']})"
        if (api, kind) in CRD_KINDS:
            crds.append(strip(doc))
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(strip(doc), version, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(case, f"{name} against Kubernetes {version}: {e.message} at {list(e.path)}")
            except kubernetes_validate.SchemaNotFoundError:
                fail(case, f"{name}: no schema for {api} {kind} in Kubernetes {version}")
    for doc in crds:
        print(f"  {case}: {doc['kind']}/{doc['metadata']['name']} is a CRD kind, not in the "
              f"Kubernetes schemas: validated against @kubernetes-models/prometheus-operator instead")
    if crds:
        answer = subprocess.run(
            ["node", str(Path(__file__).with_name("servicemonitor.mjs")), node_dir],
            input=json.dumps(crds).encode(), capture_output=True,
        )
        if answer.returncode != 0:
            fail(case, "ServiceMonitor schema: " + (answer.stdout + answer.stderr).decode().strip())


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def env_of(container: dict) -> dict[str, dict]:
    names = [e["name"] for e in container.get("env", [])]
    return {e["name"]: e for e in container.get("env", [])} if len(names) == len(set(names)) else {}


def check_objects(case: str, values: dict, docs: list[dict], external: set[tuple[str, str]]) -> None:
    """The chart's promises, on the rendered objects."""
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in by_kind(docs, "Deployment")}
    worker_enabled = values.get("worker", {}).get("enabled", False)
    if set(deployments) != ({"web", "worker"} if worker_enabled else {"web"}):
        fail(case, f"Deployments {sorted(deployments)}, expected web{' and worker' if worker_enabled else ''}")
    for component, dep in deployments.items():
        pod = dep["spec"]["template"]
        spec = pod["spec"]
        selector = dep["spec"]["selector"]["matchLabels"]
        if not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()):
            fail(case, f"{component}: selector {selector} does not match the pod's labels")
        if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
            fail(case, f"{component}: pod securityContext.runAsNonRoot is not true")
        if spec.get("automountServiceAccountToken") is not False:
            fail(case, f"{component}: automountServiceAccountToken is not false")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False \
                    or "ALL" not in sc.get("capabilities", {}).get("drop", []):
                fail(case, f"{component}: container securityContext lacks readOnlyRootFilesystem, "
                           f"allowPrivilegeEscalation false or drop ALL: {sc}")
            if not c.get("resources"):
                fail(case, f"{component}: no resources")
            env = env_of(c)
            if not env:
                fail(case, f"{component}: environment variables missing or named twice")
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    fail(case, f"{component}: volumeMount {m['name']} has no volume")
            embedded = env.get("PORTCULLIS_BACKGROUND_EMBEDDED", {}).get("value")
            if component == "web":
                if c.get("args") != ["serve"]:
                    fail(case, f"web: args {c.get('args')}, expected [serve]")
                if embedded != ("false" if worker_enabled else None):
                    fail(case, f"web: PORTCULLIS_BACKGROUND_EMBEDDED={embedded} with worker.enabled={worker_enabled}")
                paths = {p: c.get(p, {}).get("httpGet", {}).get("path")
                         for p in ("startupProbe", "livenessProbe", "readinessProbe")}
                if paths != {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}:
                    fail(case, f"web: probes {paths}")
                scheme = "HTTPS" if values.get("tls", {}).get("enabled") else "HTTP"
                if any(c[p]["httpGet"]["scheme"] != scheme for p in paths):
                    fail(case, f"web: probe scheme is not {scheme}")
            elif c.get("args") != ["worker"]:
                fail(case, f"worker: args {c.get('args')}, expected [worker]")
        for v in volumes.values():
            refs = []
            if "configMap" in v:
                refs.append(("ConfigMap", v["configMap"]["name"]))
            if "secret" in v:
                refs.append(("Secret", v["secret"]["secretName"]))
            if "persistentVolumeClaim" in v:
                refs.append(("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]))
            for source in v.get("projected", {}).get("sources", []):
                if "secret" in source:
                    refs.append(("Secret", source["secret"]["name"]))
            for ref in refs:
                if ref not in names and ref not in external:
                    fail(case, f"{component}: volume {v['name']} refers to {ref[0]} {ref[1]}, which is neither rendered nor an expected outside object")
        sa = spec.get("serviceAccountName")
        if ("ServiceAccount", sa) not in names and ("ServiceAccount", sa) not in external:
            fail(case, f"{component}: ServiceAccount {sa} is not rendered")

    web_labels = deployments["web"]["spec"]["template"]["metadata"]["labels"] if "web" in deployments else {}
    for svc in by_kind(docs, "Service"):
        if not all(web_labels.get(k) == v for k, v in svc["spec"]["selector"].items()):
            fail(case, f"Service {svc['metadata']['name']} selects no web pod")
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        component = pdb["metadata"]["labels"]["app.kubernetes.io/component"]
        pod_labels = deployments.get(component, {}).get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
        if not pod_labels or not all(pod_labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()):
            fail(case, f"PodDisruptionBudget {pdb['metadata']['name']} selects no {component} pod")
    services = by_kind(docs, "Service")
    for ing in by_kind(docs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                if p["backend"]["service"]["name"] not in {s["metadata"]["name"] for s in services}:
                    fail(case, "Ingress backend is not the chart's Service")
    for sm in by_kind(docs, "ServiceMonitor"):
        if not any(all(s["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
                   for s in services):
            fail(case, "ServiceMonitor selects no Service")
        if sm["spec"]["endpoints"][0]["path"] != "/metrics":
            fail(case, "ServiceMonitor does not scrape /metrics")
    if values.get("serviceMonitor", {}).get("enabled", False) != bool(by_kind(docs, "ServiceMonitor")):
        fail(case, "ServiceMonitor rendered against serviceMonitor.enabled")
    if values.get("ingress", {}).get("enabled", False) != bool(by_kind(docs, "Ingress")):
        fail(case, "Ingress rendered against ingress.enabled")

    for cm in by_kind(docs, "ConfigMap"):
        for key, text in cm.get("data", {}).items():
            if key.endswith(".yml"):
                try:
                    parsed = yaml.load(text, Loader=UniqueKeyLoader)
                except yaml.YAMLError as e:
                    fail(case, f"ConfigMap {cm['metadata']['name']} {key}: {e}")
                    continue
                if not isinstance(parsed, dict):
                    fail(case, f"ConfigMap {cm['metadata']['name']} {key} is not a mapping")
                if cm["metadata"]["name"].endswith("-registry"):
                    token = parsed["auth"]["token"]
                    if not token["realm"].endswith("/v2/token") or not token["issuer"]:
                        fail(case, f"registry snippet: {token}")
    for secret in by_kind(docs, "Secret"):
        data = secret.get("data", {})
        if "token.key" in data:
            key, crt = base64.b64decode(data["token.key"]), base64.b64decode(data["token.crt"])
            if public_key_of(key, "key") != public_key_of(crt, "cert"):
                fail(case, "Secret token.key and token.crt are not a pair")
            days_left = openssl("x509", "-noout", "-checkend", "86400", stdin=crt)
            if b"will not expire" not in days_left:
                fail(case, "the token certificate expires within a day")
            if len(base64.b64decode(data["webhooks.key"])) != 32:
                fail(case, "webhooks.key is not 32 bytes")
            if not base64.b64decode(data["PORTCULLIS_NOTIFICATIONS_SECRET"]):
                fail(case, "empty notification secret")


def expect_refusal(chart: helm.Chart, case: str, values: dict, words: str) -> None:
    try:
        render(chart, values)
    except helm.HelmError as e:
        if words not in str(e):
            fail(case, f"refused, but without {words!r}: {e}")
        else:
            print(f"ok   {case}: refused ({words})")
        return
    fail(case, f"rendered, but must be refused ({words})")


def main() -> int:
    chart_dir, out_dir, node_dir, *versions = sys.argv[1:]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"helm SDK {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), "
          f"kubernetes-validate {kubernetes_validate.__version__}, Kubernetes schemas {', '.join(versions)}")

    report = helm.lint(chart_dir, None, strict=True, kube_version=f"v{versions[0]}")
    problems = report["errors"] + [m["error"] for m in report["messages"] if m["severity"] >= 2]
    for p in problems:
        fail("lint", p)
    if not problems:
        infos = "; ".join(m["error"] for m in report["messages"])
        print(f"ok   lint --strict ({infos or 'no findings'})")

    chart = helm.Chart.load(chart_dir)
    key, crt = token_pair()
    cases: list[tuple[str, dict, set[tuple[str, str]]]] = [("default", {}, set())]
    for path in sorted(Path(chart_dir, "ci").glob("*.yaml")):
        values = yaml.safe_load(path.read_text()) or {}
        if path.name == "full-values.yaml":
            values["secrets"].update(tokenKey=key, tokenCert=crt)
        external = {("Secret", s) for s in (values.get("secrets", {}).get("existingSecret"),
                                            values.get("database", {}).get("existingSecret"),
                                            values.get("tls", {}).get("secretName")) if s}
        if values.get("registryCertificates", {}).get("configMap"):
            external.add(("ConfigMap", values["registryCertificates"]["configMap"]))
        if values.get("persistence", {}).get("existingClaim"):
            external.add(("PersistentVolumeClaim", values["persistence"]["existingClaim"]))
        if values.get("serviceAccount", {}).get("create") is False:
            external.add(("ServiceAccount", values["serviceAccount"]["name"]))
        cases.append((path.stem, values, external))

    for case, values, external in cases:
        try:
            chart.validate_schema(values)
            rendered = render(chart, values)
        except helm.HelmError as e:
            fail(case, f"does not render: {e}")
            continue
        docs = documents(case, rendered)
        (out / f"{case}.yaml").write_text("".join(
            f"---\n# {p}\n{t.strip()}\n" for p, t in sorted(rendered.items())
            if t.strip() and not p.endswith("NOTES.txt")))
        (out / f"{case}.NOTES.txt").write_text(
            "".join(t for p, t in rendered.items() if p.endswith("NOTES.txt")))
        before = len(failures)
        validate_schemas(case, docs, versions, node_dir)
        check_objects(case, values, docs, external)
        kinds = sorted({d["kind"] for d in docs})
        if len(failures) == before:
            print(f"ok   {case}: {len(docs)} manifests ({', '.join(kinds)}) valid, checks passed")

    expect_refusal(chart, "web.replicas=2 on SQLite", {"web": {"replicas": 2}}, "web.replicas=2 needs PostgreSQL")
    expect_refusal(chart, "worker on SQLite", {"worker": {"enabled": True}}, "worker.enabled needs PostgreSQL")
    expect_refusal(chart, "tls without a Secret", {"tls": {"enabled": True}}, "tls.enabled needs tls.secretName")
    expect_refusal(chart, "ingress without hosts", {"ingress": {"enabled": True}}, "ingress.enabled needs at least one")
    expect_refusal(chart, "half a token pair", {"secrets": {"tokenKey": key}}, "secrets.tokenKey and secrets.tokenCert go together")
    expect_refusal(chart, "unknown log format", {"logFormat": "xml"}, "/logFormat")
    expect_refusal(chart, "unknown value", {"replicas": 2}, "additional properties 'replicas' not allowed")
    expect_refusal(chart, "MySQL URL", {"database": {"url": "mysql://x@y/z"}}, "/database/url")

    if failures:
        print(f"chart: {len(failures)} failure(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
