#!/usr/bin/env bash
# Checks charts/secrets-injector, manifests/ and the Dockerfiles; fails on any error:
#   helm lint (and --strict) for every scenario; helm template for every certificate mode and a
#   few value combinations; every built-in object through kubernetes-validate --strict for
#   Kubernetes 1.30.0 and 1.33.0 (1.25.0 and 1.29.0 for the old-cluster render); CRD objects
#   (cert-manager, ServiceMonitor) checked for shape; the contract of each render (webhook entries,
#   selectors, hardening, certificates); the webhook entries' label selectors and the
#   no-silent-skip policy's CEL (cel-python) on fixtures (tests/chart/admission_rules.py); yamllint;
#   hadolint; the TARGETARCH mapping (scripts/target-for-arch.sh) and that nothing else in the
#   Dockerfiles or build-images.sh is arch-specific; the manifests drift check; negative checks
#   (required values, schema enums, Kubernetes versions); the real webhook binary started with the
#   rendered command line and sent an AdmissionReview; docs/iam-policy.json.
# Tools come from scripts/install-test-tools.sh (target/tools/bin); the webhook binary from
# $CARGO_TARGET_DIR/debug (built if missing). Prints "chart checks: N passed, M failed".
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tools="${SECRETS_INJECTOR_TOOLS:-$root/target/tools}"
bin="$tools/bin"
for t in helm kubernetes-validate yamllint hadolint python; do
  [ -x "$bin/$t" ] || { echo "check-chart: $bin/$t is missing: run scripts/install-test-tools.sh" >&2; exit 1; }
done
helm="$bin/helm"
chart=charts/secrets-injector
# The default render carries the ValidatingAdmissionPolicy (v1 since 1.30); older clusters get their own scenario.
kube_versions=(1.30.0 1.33.0)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
failures=()
# check NAME CMD...: runs CMD, counts it, shows its output only when it fails.
check() {
  local name="$1"
  shift
  local out
  if out="$("$@" 2>&1)"; then
    passed=$((passed + 1))
    printf 'ok    %s\n' "$name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf 'FAIL  %s\n%s\n' "$name" "$(printf '%s\n' "$out" | sed 's/^/      /')"
  fi
}

# The render inspector: splits built-in objects from CRD objects and checks the chart's contract.
cat >"$work/render_contract.py" <<'PY'
import argparse, base64, sys, yaml

p = argparse.ArgumentParser()
p.add_argument("file")
p.add_argument("--builtins", required=True)
p.add_argument("--release", default="secrets-injector")
p.add_argument("--namespace", default="secrets-injector")
p.add_argument("--mode", required=True, choices=["cert-manager", "self-signed", "existing-secret"])
p.add_argument("--failure-policy", default="Fail")
p.add_argument("--timeout", type=int, default=5)
p.add_argument("--replicas", type=int, default=2)
p.add_argument("--issuer", default="", help="external issuer name (cert-manager mode)")
p.add_argument("--existing-secret", default="")
p.add_argument("--ca-pem-file", default="")
p.add_argument("--agent-env", action="append", default=[])
p.add_argument("--ca-configmap", default="", help="name/key the webhook reads the agent CA from")
p.add_argument("--extra-excluded", action="append", default=[])
p.add_argument("--kind", action="append", default=[], help="kinds that must be present")
p.add_argument("--absent-kind", action="append", default=[], help="kinds that must be absent")
p.add_argument("--policy", default="present", choices=["present", "absent"], help="the no-silent-skip ValidatingAdmissionPolicy")
a = p.parse_args()

docs = [d for d in yaml.safe_load_all(open(a.file)) if d]
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)

CRD_GROUPS = ("cert-manager.io/", "monitoring.coreos.com/")
builtins = [d for d in docs if not d["apiVersion"].startswith(CRD_GROUPS)]
crds = [d for d in docs if d["apiVersion"].startswith(CRD_GROUPS)]
with open(a.builtins, "w") as f:
    yaml.safe_dump_all(builtins, f, sort_keys=False)

def of(kind):
    return [d for d in docs if d["kind"] == kind]
def one(kind):
    found = of(kind)
    need(len(found) == 1, f"want exactly one {kind}, found {len(found)}")
    return found[0] if found else {}

for k in a.kind:
    need(of(k), f"{k} missing")
for k in a.absent_kind:
    need(not of(k), f"{k} rendered but must not be")
for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
    need(not of(k), f"{k} rendered: the webhook needs no RBAC")
CLUSTER_SCOPED = ("MutatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
for d in docs:
    if d["kind"] not in CLUSTER_SCOPED:
        need(d["metadata"].get("namespace") == a.namespace, f"{d['kind']}/{d['metadata']['name']} not in {a.namespace}")

# Deployment: replicas, hardening, probes, command line, certificate volume.
dep = one("Deployment")
pod = dep.get("spec", {}).get("template", {})
labels = pod.get("metadata", {}).get("labels", {})
spec = pod.get("spec", {})
need(dep.get("spec", {}).get("replicas") == a.replicas, f"replicas {dep.get('spec', {}).get('replicas')} != {a.replicas}")
need(spec.get("automountServiceAccountToken") is False, "pod mounts a service account token")
psc = spec.get("securityContext", {})
need(psc.get("runAsNonRoot") is True and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"pod securityContext not hardened: {psc}")
c = (spec.get("containers") or [{}])[0]
sc = c.get("securityContext", {})
need(sc.get("readOnlyRootFilesystem") is True, "root filesystem writable")
need(sc.get("allowPrivilegeEscalation") is False, "privilege escalation allowed")
need(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities not dropped")
need(sc.get("runAsUser") == 65532 and sc.get("runAsNonRoot") is True, "container not uid 65532 / non-root")
need(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "container seccomp not RuntimeDefault")
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
need(set(ports) == {"https", "health"}, f"container ports {ports}")
need(c.get("livenessProbe", {}).get("httpGet", {}) == {"path": "/healthz", "port": "health"}, "liveness probe not /healthz on health")
need(c.get("readinessProbe", {}).get("httpGet", {}) == {"path": "/readyz", "port": "health"}, "readiness probe not /readyz on health")
need(bool(c.get("resources", {}).get("requests")), "no resource requests")
args = c.get("args", [])
need(args[:1] == ["serve"], f"args do not start with serve: {args[:1]}")
for want in ("--tls-cert-file=/certs/tls.crt", "--tls-key-file=/certs/tls.key", f"--listen=0.0.0.0:{ports.get('https')}", f"--health-listen=0.0.0.0:{ports.get('health')}"):
    need(want in args, f"{want} missing from args")
need(any(x.startswith("--agent-image=") and "/secrets-injector-agent" in x for x in args), "no --agent-image")
agent_env = [x.split("=", 1)[1] for x in args if x.startswith("--agent-env=")]
need(agent_env == a.agent_env, f"agent env {agent_env} != {a.agent_env}")
ca_args = [x for x in args if x.startswith("--agent-ca-bundle=")]
need(ca_args == (["--agent-ca-bundle=$(AGENT_CA_BUNDLE)"] if a.ca_configmap else []), f"agent CA args {ca_args}")
env = {e["name"]: e for e in c.get("env", [])}
if a.ca_configmap:
    name, key = a.ca_configmap.split("/")
    ref = env.get("AGENT_CA_BUNDLE", {}).get("valueFrom", {}).get("configMapKeyRef", {})
    need(ref == {"name": name, "key": key}, f"AGENT_CA_BUNDLE ref {ref}")
    need(list(env).index("AGENT_CA_BUNDLE") == 0 if env else False, "AGENT_CA_BUNDLE must come first so $(…) expands")
else:
    need("AGENT_CA_BUNDLE" not in env, "AGENT_CA_BUNDLE set without a CA")
mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
need(mounts.get("certs", {}).get("mountPath") == "/certs" and mounts["certs"].get("readOnly") is True, "certs not mounted read-only at /certs")
vols = {v["name"]: v for v in spec.get("volumes", [])}
tls_secret = vols.get("certs", {}).get("secret", {}).get("secretName")
aff = spec.get("affinity", {}).get("podAntiAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution")
need(bool(aff), "no soft pod anti-affinity")
need(bool(spec.get("topologySpreadConstraints")), "no topology spread")

sa = one("ServiceAccount")
need(sa.get("automountServiceAccountToken") is False, "ServiceAccount automounts its token")
need(spec.get("serviceAccountName") == sa.get("metadata", {}).get("name"), "pod does not use the chart's ServiceAccount")

svc = one("Service")
svc_ports = {p["name"]: p for p in svc.get("spec", {}).get("ports", [])}
need(svc_ports.get("https", {}).get("port") == 443 and svc_ports["https"].get("targetPort") == "https", "Service is not 443 -> https")
sel = svc.get("spec", {}).get("selector", {})
need(sel and all(labels.get(k) == v for k, v in sel.items()), "Service selector does not match the pods")

pdb = one("PodDisruptionBudget")
need(pdb.get("spec", {}).get("minAvailable") == 1, "PDB minAvailable != 1")
need(all(labels.get(k) == v for k, v in pdb.get("spec", {}).get("selector", {}).get("matchLabels", {}).items()), "PDB selector does not match")

# MutatingWebhookConfiguration: the two entries of DESIGN §2.
mwc = one("MutatingWebhookConfiguration")
hooks = mwc.get("webhooks", [])
need([h["name"] for h in hooks] == ["namespace.secrets-injector.io", "pod.secrets-injector.io"], f"webhook names {[h['name'] for h in hooks]}")
excluded = {"kube-system", "kube-public", "kube-node-lease", a.namespace, *a.extra_excluded}
ca_bundles = set()
for h in hooks:
    n = h["name"]
    need(h.get("admissionReviewVersions") == ["v1"], f"{n}: admissionReviewVersions")
    need(h.get("sideEffects") == "None", f"{n}: sideEffects")
    need(h.get("failurePolicy") == a.failure_policy, f"{n}: failurePolicy {h.get('failurePolicy')}")
    need(h.get("timeoutSeconds") == a.timeout and a.timeout <= 10, f"{n}: timeoutSeconds {h.get('timeoutSeconds')}")
    need(h.get("reinvocationPolicy") == "IfNeeded", f"{n}: reinvocationPolicy")
    need(h.get("matchPolicy") == "Equivalent", f"{n}: matchPolicy")
    need(h.get("rules") == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}], f"{n}: rules {h.get('rules')}")
    svcref = h.get("clientConfig", {}).get("service", {})
    need(svcref == {"name": svc["metadata"]["name"], "namespace": a.namespace, "path": "/mutate", "port": 443}, f"{n}: clientConfig.service {svcref}")
    ca_bundles.add(h.get("clientConfig", {}).get("caBundle"))
    exprs = h.get("namespaceSelector", {}).get("matchExpressions", [])
    names = [e for e in exprs if e["key"] == "kubernetes.io/metadata.name"]
    need(len(names) == 1 and names[0]["operator"] == "NotIn" and set(names[0]["values"]) == excluded, f"{n}: excluded namespaces {names}")
    inject = [e for e in exprs if e["key"] == "secrets-injector.io/inject"]
    want_op = "In" if n.startswith("namespace.") else "NotIn"
    need(inject == [{"key": "secrets-injector.io/inject", "operator": want_op, "values": ["enabled"]}], f"{n}: namespace opt-in selector {inject}")
    # Label inject=disabled keeps a pod from both entries (tests/chart/admission_rules.py selectors proves it).
    if n.startswith("pod."):
        need(h.get("objectSelector") == {"matchLabels": {"secrets-injector.io/inject": "enabled"}}, f"{n}: objectSelector")
    else:
        want_sel = {"matchExpressions": [{"key": "secrets-injector.io/inject", "operator": "NotIn", "values": ["disabled"]}]}
        need(h.get("objectSelector") == want_sel, f"{n}: objectSelector {h.get('objectSelector')}")
need(len(ca_bundles) == 1, "the two entries carry different caBundles")

# The no-silent-skip policy: exempts the webhook entries' namespaces; its CEL is tested by tests/chart/admission_rules.py.
vaps, vapbs = of("ValidatingAdmissionPolicy"), of("ValidatingAdmissionPolicyBinding")
if a.policy == "absent":
    need(not vaps and not vapbs, "ValidatingAdmissionPolicy/Binding rendered but must not be")
else:
    need(len(vaps) == 1 and len(vapbs) == 1, f"want one ValidatingAdmissionPolicy and one binding, found {len(vaps)}, {len(vapbs)}")
    for v in vaps:
        vexprs = v["spec"].get("matchConstraints", {}).get("namespaceSelector", {}).get("matchExpressions", [])
        vnames = [e for e in vexprs if e["key"] == "kubernetes.io/metadata.name"]
        need(len(vnames) == 1 and vnames[0]["operator"] == "NotIn" and set(vnames[0]["values"]) == excluded, f"policy: excluded namespaces {vnames}")
ca_bundle = next(iter(ca_bundles), None)
annotations = mwc.get("metadata", {}).get("annotations") or {}

# CRD objects have no schema in kubernetes-validate: check the fields we use by hand.
CERT_SPEC = {"secretName", "commonName", "dnsNames", "duration", "renewBefore", "privateKey", "usages", "issuerRef", "isCA"}
USAGES = {"server auth", "digital signature", "key encipherment", "cert sign", "crl sign"}
def duration_ok(s):
    import re
    return isinstance(s, str) and re.fullmatch(r"([0-9]+(\.[0-9]+)?(h|m|s))+", s) is not None
for d in crds:
    kind, name, s = d["kind"], d["metadata"]["name"], d.get("spec", {})
    if kind == "Certificate":
        need(d["apiVersion"] == "cert-manager.io/v1", f"Certificate/{name}: apiVersion")
        need(set(s) <= CERT_SPEC, f"Certificate/{name}: unknown spec fields {set(s) - CERT_SPEC}")
        need(bool(s.get("secretName")) and bool(s.get("issuerRef", {}).get("name")), f"Certificate/{name}: secretName and issuerRef.name are required")
        need(set(s.get("issuerRef", {})) <= {"name", "kind", "group"} and s["issuerRef"].get("kind", "Issuer") in ("Issuer", "ClusterIssuer"), f"Certificate/{name}: issuerRef {s.get('issuerRef')}")
        need(set(s.get("usages", [])) <= USAGES, f"Certificate/{name}: usages {s.get('usages')}")
        need(s.get("privateKey", {}).get("algorithm", "RSA") in ("RSA", "ECDSA", "Ed25519"), f"Certificate/{name}: privateKey.algorithm")
        need(set(s.get("privateKey", {})) <= {"algorithm", "size", "rotationPolicy", "encoding"}, f"Certificate/{name}: privateKey fields")
        for f in ("duration", "renewBefore"):
            need(f not in s or duration_ok(s[f]), f"Certificate/{name}: {f} {s.get(f)!r} is not a duration")
    elif kind == "Issuer":
        need(d["apiVersion"] == "cert-manager.io/v1", f"Issuer/{name}: apiVersion")
        need(len(s) == 1 and set(s) <= {"selfSigned", "ca"}, f"Issuer/{name}: spec must be exactly one of selfSigned, ca: {s}")
        need("ca" not in s or set(s["ca"]) == {"secretName"}, f"Issuer/{name}: ca needs secretName only")
    elif kind == "ServiceMonitor":
        need(d["apiVersion"] == "monitoring.coreos.com/v1", f"ServiceMonitor/{name}: apiVersion")
        need(set(s) <= {"selector", "namespaceSelector", "endpoints"}, f"ServiceMonitor/{name}: spec fields {set(s)}")
        msel = s.get("selector", {}).get("matchLabels", {})
        need(msel and all(svc["metadata"]["labels"].get(k) == v for k, v in msel.items()), f"ServiceMonitor/{name}: selector does not match the Service")
        need(s.get("namespaceSelector") == {"matchNames": [a.namespace]}, f"ServiceMonitor/{name}: namespaceSelector")
        eps = s.get("endpoints", [])
        need(len(eps) == 1 and eps[0].get("port") == "http-metrics" and "http-metrics" in svc_ports and eps[0].get("path") == "/metrics", f"ServiceMonitor/{name}: endpoints {eps}")
        need(all(set(e) <= {"port", "path", "scheme", "interval", "scrapeTimeout"} for e in eps), f"ServiceMonitor/{name}: endpoint fields")
        need(all(duration_ok(e.get(f, "1s")) for e in eps for f in ("interval", "scrapeTimeout")), f"ServiceMonitor/{name}: durations")
    else:
        problems.append(f"unexpected CRD object {d['apiVersion']} {kind}")

certs = {d["metadata"]["name"]: d for d in of("Certificate")}
issuers = {d["metadata"]["name"]: d for d in of("Issuer")}
if a.mode == "cert-manager":
    serving = [c for c in certs.values() if not c["spec"].get("isCA")]
    need(len(serving) == 1, f"want one serving Certificate, found {len(serving)}")
    if serving:
        cs = serving[0]
        need(annotations.get("cert-manager.io/inject-ca-from") == f"{a.namespace}/{cs['metadata']['name']}", f"inject-ca-from {annotations}")
        need(cs["spec"]["secretName"] == tls_secret, "serving Certificate does not write the Secret the pods mount")
        need(f"{svc['metadata']['name']}.{a.namespace}.svc" in cs["spec"].get("dnsNames", []), "serving Certificate lacks the Service DNS name")
        ref = cs["spec"]["issuerRef"]["name"]
        if a.issuer:
            need(ref == a.issuer and not issuers and len(certs) == 1, f"external issuer not used alone: {ref}, issuers {list(issuers)}")
        else:
            ca_issuer = issuers.get(ref, {}).get("spec", {}).get("ca", {})
            need(bool(ca_issuer), f"serving issuer {ref} is not a CA Issuer in the render")
            ca_cert = [c for c in certs.values() if c["spec"].get("isCA")]
            need(len(ca_cert) == 1 and ca_cert[0]["spec"]["secretName"] == ca_issuer.get("secretName"), "CA Issuer does not use the CA Certificate's Secret")
            if ca_cert:
                root_ref = ca_cert[0]["spec"]["issuerRef"]["name"]
                need("selfSigned" in issuers.get(root_ref, {}).get("spec", {}), "CA Certificate is not issued by a selfSigned Issuer")
    need(ca_bundle is None, "caBundle set in cert-manager mode (cert-manager injects it)")
    need(not of("Secret"), "a Secret is rendered in cert-manager mode")
else:
    need(not crds or all(d["kind"] == "ServiceMonitor" for d in crds), "cert-manager objects outside cert-manager mode")
    need("cert-manager.io/inject-ca-from" not in annotations, "inject-ca-from outside cert-manager mode")
    need(bool(ca_bundle), "no caBundle")

if a.mode == "self-signed":
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives import serialization
    sec = one("Secret")
    need(sec.get("type") == "kubernetes.io/tls" and sec["metadata"]["name"] == tls_secret, "self-signed Secret is not the mounted kubernetes.io/tls Secret")
    data = sec.get("data", {})
    need(data.get("ca.crt") == ca_bundle, "caBundle differs from the Secret's ca.crt")
    ca = x509.load_pem_x509_certificate(base64.b64decode(data["ca.crt"]))
    crt = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
    key = serialization.load_pem_private_key(base64.b64decode(data["tls.key"]), None)
    crt.verify_directly_issued_by(ca)
    need(key.public_key().public_numbers() == crt.public_key().public_numbers(), "tls.key does not match tls.crt")
    sans = crt.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    need(f"{svc['metadata']['name']}.{a.namespace}.svc" in sans, f"SANs {sans} lack the Service DNS name")
    need(ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca, "ca.crt is not a CA")

if a.mode == "existing-secret":
    need(tls_secret == a.existing_secret, f"pods mount {tls_secret}, want {a.existing_secret}")
    need(not of("Secret"), "existing-secret mode renders a Secret")
    pem = open(a.ca_pem_file).read().strip() + "\n"
    need(base64.b64decode(ca_bundle or "").decode() == pem, "caBundle is not the given PEM")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(len(builtins))
PY

py() { "$bin/python" "$@"; }

# scenario NAME "HELM ARGS" "INSPECT ARGS" [KUBE VERSIONS]: render, validate, inspect, lint, and
# evaluate the webhook selectors and the policy's CEL on fixtures (tests/chart/admission_rules.py).
scenario() {
  local name="$1" helm_args="$2" inspect_args="$3"
  local versions
  read -r -a versions <<<"${4:-${kube_versions[*]}}"
  local out="$work/$name.yaml" builtins="$work/$name.builtins.yaml"
  # shellcheck disable=SC2086 # the argument strings are word lists on purpose
  check "$name: helm lint" "$helm" lint "$chart" --namespace ns-under-test $helm_args
  # shellcheck disable=SC2086
  check "$name: helm lint --strict" "$helm" lint --strict "$chart" --namespace ns-under-test $helm_args
  # shellcheck disable=SC2086
  if ! "$helm" template rel "$chart" --namespace ns-under-test $helm_args >"$out" 2>"$work/$name.err"; then
    check "$name: helm template" sh -c "cat '$work/$name.err'; false"
    return
  fi
  check "$name: helm template" true
  # shellcheck disable=SC2086
  check "$name: contract of the rendered objects" py "$work/render_contract.py" "$out" --builtins "$builtins" \
    --release rel --namespace ns-under-test $inspect_args
  local want
  want="$(py -c 'import sys,yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$builtins")"
  for v in "${versions[@]}"; do
    check "$name: kubernetes-validate --strict $v ($want objects)" validate "$builtins" "$v" "$want"
  done
  check "$name: yamllint" "$bin/yamllint" -s -c .yamllint.yaml "$out"
  local excluded=() ns
  # shellcheck disable=SC2086
  for ns in $(printf '%s\n' $inspect_args | sed -n '/^--extra-excluded$/{n;p}'); do excluded+=(--extra-excluded "$ns"); done
  check "$name: label selectors (inject=disabled never sent, no pod sent twice, excluded namespaces)" \
    py tests/chart/admission_rules.py selectors "$out" --namespace ns-under-test "${excluded[@]}"
  if py -c 'import sys,yaml; sys.exit(not any(d and d["kind"] == "ValidatingAdmissionPolicy" for d in yaml.safe_load_all(open(sys.argv[1]))))' "$out"; then
    check "$name: no-silent-skip policy CEL on fixture pods (cel-python)" py tests/chart/admission_rules.py policy "$out"
  fi
}

# validate FILE VERSION COUNT: every object must pass (a silently skipped object fails the count).
validate() {
  local out n
  out="$("$bin/kubernetes-validate" -k "$2" --strict "$1" 2>&1)" || { printf '%s\n' "$out"; return 1; }
  n="$(printf '%s\n' "$out" | grep -c ' passed for resource ')"
  printf '%s\n' "$out"
  [ "$n" = "$3" ] || { echo "only $n of $3 objects were validated"; return 1; }
  ! printf '%s\n' "$out" | grep -q "Couldn't find schema"
}

# expect_fail NAME "MESSAGE" HELM ARGS...: helm template must fail and print MESSAGE.
expect_fail() {
  local name="$1" message="$2"
  shift 2
  check "negative: $name" expect_fail_run "$message" "$@"
}
expect_fail_run() {
  local message="$1" out
  shift
  if out="$("$helm" template rel "$chart" --namespace ns-under-test "$@" 2>&1)"; then
    echo "helm template succeeded; want a failure saying: $message"
    return 1
  fi
  printf '%s\n' "$out" | grep -qF -- "$message" || { printf 'wrong message, want %s:\n%s\n' "$message" "$out"; return 1; }
}

echo "== chart: $chart (helm $("$helm" version --template '{{.Version}}'))"
check "yamllint values.yaml and Chart.yaml" "$bin/yamllint" -s -c .yamllint.yaml "$chart/values.yaml" "$chart/Chart.yaml"
check "values.schema.json is JSON" py -c 'import json,sys; json.load(open(sys.argv[1]))' "$chart/values.schema.json"
# Every value (or a parent documented as a whole) has a row in the README's table.
check "every value is documented in $chart/README.md" py - "$chart/values.yaml" "$chart/README.md" <<'PY'
import sys, yaml
values, readme = yaml.safe_load(open(sys.argv[1])), open(sys.argv[2]).read()
def leaves(d, prefix=""):
    for k, v in d.items():
        path = prefix + k
        if isinstance(v, dict) and v:
            yield from leaves(v, path + ".")
        else:
            yield path
missing = [p for p in leaves(values)
           if not any(f"| `{'.'.join(p.split('.')[:i])}` |" in readme for i in range(1, p.count(".") + 2))]
if missing:
    sys.exit("undocumented values: " + ", ".join(missing))
PY

scenario "cert-manager (default)" "" "--mode cert-manager --kind Certificate --kind Issuer --absent-kind NetworkPolicy --absent-kind ServiceMonitor"
scenario "cert-manager, external ClusterIssuer" \
  "--set certificates.certManager.issuerRef.name=corp-ca --set certificates.certManager.issuerRef.kind=ClusterIssuer" \
  "--mode cert-manager --issuer corp-ca --absent-kind Issuer"
scenario "self-signed" "--set certificates.mode=self-signed" "--mode self-signed --kind Secret"

# A real CA for the existing-secret scenario, cut from a self-signed render.
"$helm" template rel "$chart" --namespace ns-under-test --set certificates.mode=self-signed |
  py -c 'import base64,sys,yaml; s=[d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"]=="Secret"][0]; sys.stdout.write(base64.b64decode(s["data"]["ca.crt"]).decode())' >"$work/ca.pem"
# The agent bundle as `openssl x509 -subject` prints it: a text line with commas before the PEM.
{ echo "subject=C = US, O = Example Corp, CN = Example Root CA"; cat "$work/ca.pem"; } >"$work/agent-ca.pem"
scenario "existing-secret" \
  "--set certificates.mode=existing-secret --set certificates.existingSecret.name=my-tls --set-file certificates.existingSecret.caBundle=$work/ca.pem" \
  "--mode existing-secret --existing-secret my-tls --ca-pem-file $work/ca.pem --absent-kind Secret"
scenario "failurePolicy Ignore, timeout 10, extra excluded namespace" \
  "--set webhook.failurePolicy=Ignore --set webhook.timeoutSeconds=10 --set webhook.excludeNamespaces={batch-system}" \
  "--mode cert-manager --failure-policy Ignore --timeout 10 --extra-excluded batch-system"
scenario "Kubernetes 1.25-1.29: classic sidecars, no policy (no ValidatingAdmissionPolicy v1 API)" \
  "--kube-version 1.29.0 --set agent.sidecarStyle=classic" "--mode cert-manager --policy absent" "1.25.0 1.29.0"
scenario "validatingPolicy.enabled=false" "--set validatingPolicy.enabled=false" "--mode cert-manager --policy absent"
scenario "networkPolicy + serviceMonitor + FIPS, VPC endpoints, private CA" \
  "--set networkPolicy.enabled=true --set serviceMonitor.enabled=true --set agent.fips=true \
   --set agent.endpoints.secretsManager=https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com \
   --set agent.endpoints.ssm=https://vpce-2.ssm.eu-west-1.vpce.amazonaws.com \
   --set agent.endpoints.sts=https://vpce-3.sts.eu-west-1.vpce.amazonaws.com \
   --set-file agent.caBundle.pem=$work/agent-ca.pem --set agent.extraEnv.AWS_MAX_ATTEMPTS=5 \
   --set agent.proxy.httpsProxy=http://proxy.internal:3128 --set agent.proxy.noProxy={169.254.170.23,.svc,.cluster.local} \
   --set agent.sidecarStyle=classic --set replicaCount=3 --set priorityClassName=system-cluster-critical" \
  "--mode cert-manager --kind NetworkPolicy --kind ServiceMonitor --kind ConfigMap --replicas 3 \
   --agent-env AWS_USE_FIPS_ENDPOINT=true \
   --agent-env AWS_ENDPOINT_URL_SECRETS_MANAGER=https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com \
   --agent-env AWS_ENDPOINT_URL_SSM=https://vpce-2.ssm.eu-west-1.vpce.amazonaws.com \
   --agent-env AWS_ENDPOINT_URL_STS=https://vpce-3.sts.eu-west-1.vpce.amazonaws.com \
   --agent-env HTTPS_PROXY=http://proxy.internal:3128 \
   --agent-env AWS_MAX_ATTEMPTS=5 \
   --ca-configmap rel-secrets-injector-agent-ca/ca.crt"
scenario "agent CA from an existing ConfigMap, hostNetwork, digests" \
  "--set agent.caBundle.configMapRef.name=corp-ca --set agent.caBundle.configMapRef.key=bundle.pem --set hostNetwork=true \
   --set image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" \
  "--mode cert-manager --absent-kind ConfigMap --ca-configmap corp-ca/bundle.pem"

expect_fail "existing-secret without caBundle" \
  "certificates.existingSecret.caBundle is required when certificates.mode=existing-secret" \
  --set certificates.mode=existing-secret --set certificates.existingSecret.name=my-tls
expect_fail "existing-secret without a Secret name" \
  "certificates.existingSecret.name is required when certificates.mode=existing-secret" \
  --set certificates.mode=existing-secret --set-file "certificates.existingSecret.caBundle=$work/ca.pem"
expect_fail "existing-secret caBundle that is not PEM" "must be PEM text" \
  --set certificates.mode=existing-secret --set certificates.existingSecret.name=my-tls --set certificates.existingSecret.caBundle=Zm9v
expect_fail "schema: certificates.mode enum" "at '/certificates/mode'" --set certificates.mode=vault
expect_fail "schema: failurePolicy enum" "at '/webhook/failurePolicy'" --set webhook.failurePolicy=Never
expect_fail "schema: sidecarStyle enum" "at '/agent/sidecarStyle'" --set agent.sidecarStyle=legacy
expect_fail "schema: logFormat enum" "at '/logFormat'" --set logFormat=xml
expect_fail "schema: timeoutSeconds above 10" "at '/webhook/timeoutSeconds'" --set webhook.timeoutSeconds=30
expect_fail "schema: misspelt top-level key" "additional properties 'replicas' not allowed" --set replicas=3
expect_fail "schema: validatingPolicy.enabled is a boolean" "at '/validatingPolicy/enabled'" --set-string validatingPolicy.enabled=yes
expect_fail "native sidecars on Kubernetes 1.28" "agent.sidecarStyle=native needs Kubernetes >= 1.29" --kube-version 1.28.0
expect_fail "Kubernetes older than the chart's kubeVersion" "chart requires kubeVersion" --kube-version 1.24.0 --set agent.sidecarStyle=classic
expect_fail "agent.extraEnv value with a comma" "contains a comma" --set-string "agent.extraEnv.NO_PROXY=a\,b"

echo "== the chart's command line against the real webhook binary"
# Starts `secrets-injector-webhook serve` with the Deployment's rendered args and env (only the
# listen addresses and certificate paths swapped for loopback ones), then sends an AdmissionReview
# over verified HTTPS and checks the agent env (FIPS, VPC endpoints, private CA) in the patch.
webhook_bin="${SECRETS_INJECTOR_WEBHOOK_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/secrets-injector-webhook}"
if [ ! -x "$webhook_bin" ]; then
  echo "building $webhook_bin (cargo build -p secrets-injector-webhook)" >&2
  cargo build -q -p secrets-injector-webhook >&2 || true
fi
check "webhook binary runs the rendered Deployment's command line and injects the chart's agent env" \
  py - "$webhook_bin" "$work/networkPolicy + serviceMonitor + FIPS, VPC endpoints, private CA.yaml" "$work/agent-ca.pem" examples/pod.yaml <<'PY'
import base64, json, os, socket, ssl, subprocess, sys, tempfile, time, urllib.request
import jsonpatch, yaml
binary, rendered, ca_pem_file, pod_file = sys.argv[1:5]
if not os.access(binary, os.X_OK):
    sys.exit(f"{binary} is missing: cargo build -p secrets-injector-webhook (or set SECRETS_INJECTOR_WEBHOOK_BIN)")
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
c = dep["spec"]["template"]["spec"]["containers"][0]
cm = next(d for d in docs if d["kind"] == "ConfigMap")
# What the kubelet does: resolve configMapKeyRef env, then expand $(VAR) in args.
env = {}
for e in c.get("env", []):
    ref = e.get("valueFrom", {}).get("configMapKeyRef")
    env[e["name"]] = cm["data"][ref["key"]] if ref else e["value"]
args = []
for a in c["args"]:
    for k, v in env.items():
        a = a.replace(f"$({k})", v)
    args.append(a)
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
tmp = tempfile.mkdtemp()
subprocess.run([binary, "certs", "--out-dir", tmp, "--dns-name", "localhost"], check=True, capture_output=True)
https, health = free_port(), free_port()
local_flags = {"--listen": f"127.0.0.1:{https}", "--health-listen": f"127.0.0.1:{health}",
               "--tls-cert-file": f"{tmp}/tls.crt", "--tls-key-file": f"{tmp}/tls.key"}
for flag in local_flags:
    assert sum(a.startswith(flag + "=") for a in args) == 1, f"{flag} not rendered exactly once"
cmd = [binary] + [f"{a.split('=', 1)[0]}={local_flags[a.split('=', 1)[0]]}" if a.split("=", 1)[0] in local_flags else a for a in args]
log = open(os.path.join(tmp, "webhook.log"), "w+")
proc = subprocess.Popen(cmd, stdout=log, stderr=log, env={**os.environ, **env})
try:
    for _ in range(300):  # bounded wait (up to ~60 s on a busy machine)
        if proc.poll() is not None:
            log.seek(0)
            sys.exit(f"webhook exited with {proc.returncode} on the chart's args:\n{log.read()}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=2).status == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        sys.exit("webhook never became ready")
    pod = yaml.safe_load(open(pod_file))
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "chart-check", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": pod["metadata"].get("namespace", "default"), "operation": "CREATE",
        "userInfo": {"username": "check-chart"}, "object": pod, "dryRun": False}}
    ctx = ssl.create_default_context(cafile=f"{tmp}/ca.crt")
    req = urllib.request.Request(f"https://localhost:{https}/mutate", data=json.dumps(review).encode(),
                                 headers={"Content-Type": "application/json"})
    resp = json.load(urllib.request.urlopen(req, context=ctx, timeout=30))["response"]
    assert resp["uid"] == "chart-check" and resp["allowed"], resp.get("status")
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(resp["patch"])))
    agent = patched["spec"]["initContainers"][0]
    got = {e["name"]: e.get("value") for e in agent.get("env", [])}
    want = {k: v for k, v in (a.split("=", 1)[1].split("=", 1) for a in args if a.startswith("--agent-env="))}
    missing = {k for k, v in want.items() if got.get(k) != v}
    assert not missing, f"agent env lacks {sorted(missing)}"
    assert got["SECRETS_INJECTOR_CA_BUNDLE"].strip() == open(ca_pem_file).read().strip(), "CA bundle PEM changed on the way"
    assert "," in got["SECRETS_INJECTOR_CA_BUNDLE"], "the check's bundle should carry a comma (openssl subject line)"
    assert got["AWS_USE_FIPS_ENDPOINT"] == "true"
    no_proxy = "169.254.170.23,.svc,.cluster.local"
    assert got.get("NO_PROXY") == no_proxy and got.get("no_proxy") == no_proxy, "NO_PROXY list cut or missing"
    assert got.get("HTTPS_PROXY") == "http://proxy.internal:3128"
    image = next(a.split("=", 1)[1] for a in args if a.startswith("--agent-image="))
    assert agent["image"] == image, agent["image"]
    print(f"agent {agent['name']}: image {image}, env {sorted(want)}")
finally:
    proc.terminate()
    proc.wait(timeout=60)
PY

echo "== manifests"
check "manifests/secrets-injector.yaml matches the chart (rerun scripts/render-manifests.sh)" \
  sh -c "scripts/render-manifests.sh '$work/manifests.yaml' && diff -u manifests/secrets-injector.yaml '$work/manifests.yaml'"
# The chart's contract is checked on the render above; here every built-in object of the file itself.
py -c 'import sys,yaml; d=[x for x in yaml.safe_load_all(open(sys.argv[1])) if x and not x["apiVersion"].startswith(("cert-manager.io/","monitoring.coreos.com/"))]; yaml.safe_dump_all(d, open(sys.argv[2],"w"), sort_keys=False); print(len(d))' \
  manifests/secrets-injector.yaml "$work/manifests.builtins.yaml" >"$work/manifests.count"
for v in "${kube_versions[@]}"; do
  check "manifests: kubernetes-validate --strict $v" validate "$work/manifests.builtins.yaml" "$v" "$(cat "$work/manifests.count")"
done
check "manifests: yamllint" "$bin/yamllint" -s -c .yamllint.yaml manifests/
check "manifests: the no-silent-skip policy's CEL on fixture pods (cel-python)" py tests/chart/admission_rules.py policy manifests/secrets-injector.yaml
check "manifests: label selectors (inject=disabled never sent)" py tests/chart/admission_rules.py selectors manifests/secrets-injector.yaml --namespace secrets-injector

echo "== docs"
check "docs/iam-policy.json: the agent's actions, BatchGetSecretValue alone on *, kms:ViaService" py - docs/iam-policy.json <<'PY'
import json, sys
stmts = json.load(open(sys.argv[1]))["Statement"]
by_action = {}
for st in stmts:
    assert st["Effect"] == "Allow"
    for a in [st["Action"]] if isinstance(st["Action"], str) else st["Action"]:
        by_action[a] = st
want = {"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "ssm:GetParameters", "kms:Decrypt"}
assert set(by_action) == want, f"actions {sorted(by_action)} != {sorted(want)}"
assert by_action["secretsmanager:BatchGetSecretValue"]["Resource"] == "*"
assert "*" not in json.dumps(by_action["secretsmanager:GetSecretValue"]["Resource"]).replace("/*", ""), "GetSecretValue on *"
assert "kms:ViaService" in by_action["kms:Decrypt"]["Condition"]["StringEquals"]
PY
check "docs/iam-policy-selectors.json: selector actions, ListSecrets and BatchGetSecretValue alone on *, tag reads behind ResourceTag" py - docs/iam-policy-selectors.json <<'PY'
import json, sys
stmts = json.load(open(sys.argv[1]))["Statement"]
actions = set()
for st in stmts:
    assert st["Effect"] == "Allow"
    acts = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
    actions.update(acts)
    res = json.dumps(st["Resource"])
    if "secretsmanager:GetSecretValue" in acts and res.endswith(':secret:*"'):
        assert any(k.startswith("aws:ResourceTag/") for k in st["Condition"]["StringEquals"]), "GetSecretValue on secret:* without a ResourceTag condition"
    if st["Resource"] == "*":
        assert set(acts) <= {"secretsmanager:ListSecrets", "secretsmanager:BatchGetSecretValue"}, f"{acts} on *"
want = {"secretsmanager:ListSecrets", "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "ssm:GetParametersByPath", "kms:Decrypt"}
assert actions == want, f"actions {sorted(actions)} != {sorted(want)}"
PY

echo "== images"
check "hadolint Dockerfile.webhook" "$bin/hadolint" Dockerfile.webhook
check "hadolint Dockerfile.agent" "$bin/hadolint" Dockerfile.agent

# Multi-arch (linux/amd64, linux/arm64): scripts/target-for-arch.sh is the only arch-specific place.
arch_map() {
  local got
  got="$(scripts/target-for-arch.sh --list | tr '\n' ' ')"
  [ "$got" = "amd64 arm64 " ] || { echo "--list: $got"; return 1; }
  got="$(scripts/target-for-arch.sh amd64)"
  [ "$got" = x86_64-unknown-linux-gnu ] || { echo "amd64 -> $got"; return 1; }
  got="$(scripts/target-for-arch.sh arm64)"
  [ "$got" = aarch64-unknown-linux-gnu ] || { echo "arm64 -> $got"; return 1; }
  local a
  for a in 386 riscv64 s390x x86_64 aarch64; do
    if got="$(scripts/target-for-arch.sh "$a" 2>&1)"; then echo "$a was accepted: $got"; return 1; fi
    printf '%s\n' "$got" | grep -q "supported are amd64 arm64" || { echo "$a: $got"; return 1; }
  done
  got="$(scripts/target-for-arch.sh "" 2>&1)" && { echo "an empty TARGETARCH was accepted"; return 1; }
  printf '%s\n' "$got" | grep -q "TARGETARCH is empty" || { echo "empty: $got"; return 1; }
  echo "amd64 -> x86_64-unknown-linux-gnu, arm64 -> aarch64-unknown-linux-gnu; others refused"
}
cross_env() {
  local host other env
  host="$(scripts/target-for-arch.sh --host)"
  other="$( [ "$host" = amd64 ] && echo arm64 || echo amd64)"
  env="$(scripts/target-for-arch.sh --cargo-env "$other")"
  eval "$(scripts/target-for-arch.sh --vars "$other")"
  local t_upper
  t_upper="$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')"
  for want in "RUST_TARGET='$RUST_TARGET'" "RUSTFLAGS='-C target-feature=+crt-static'" \
    "CARGO_TARGET_${t_upper}_LINKER='$GNU_PREFIX-gcc'" "CC_$(echo "$RUST_TARGET" | tr - _)='$GNU_PREFIX-gcc'"; do
    printf '%s\n' "$env" | grep -qxF "export $want" || { echo "cross env for $other lacks $want:"; echo "$env"; return 1; }
  done
  env="$(scripts/target-for-arch.sh --cargo-env "$host")"
  printf '%s\n' "$env" | grep -q LINKER && { echo "a linker override for the host's own arch: $env"; return 1; }
  printf '%s\n' "$env" | grep -q "+crt-static" || { echo "no crt-static for $host"; return 1; }
  echo "$host -> $other: linker $GNU_PREFIX-gcc, crt-static"
}
# Outside the mapping, no line that is not a comment names an architecture.
no_arch_outside_map() {
  local hits
  hits="$(grep -nHE 'x86[_-]64|amd64|aarch64|arm64' Dockerfile.webhook Dockerfile.agent .dockerignore scripts/build-images.sh |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*#')" && { echo "architecture named outside scripts/target-for-arch.sh:"; echo "$hits"; return 1; }
  echo "Dockerfiles, .dockerignore, build-images.sh: no arch-specific line"
}
dockerfile_cross() {
  local f="$1" stage
  grep -qxE 'FROM --platform=\$BUILDPLATFORM \$\{RUST_IMAGE\} AS builder' "$f" || { echo "$f: builder is not FROM --platform=\$BUILDPLATFORM"; return 1; }
  for stage in builder prebuilt; do
    awk -v s="$stage" '/^FROM /{in_s = ($NF == s)} in_s && /^ARG TARGETARCH$/{found=1} END{exit !found}' "$f" ||
      { echo "$f: stage $stage does not declare ARG TARGETARCH"; return 1; }
  done
  grep -qF 'scripts/target-for-arch.sh --install "$TARGETARCH"' "$f" || { echo "$f: no target-for-arch.sh --install"; return 1; }
  grep -qF 'eval "$(scripts/target-for-arch.sh --cargo-env "$TARGETARCH")"' "$f" || { echo "$f: no target-for-arch.sh --cargo-env"; return 1; }
  grep -qF -- '--target "$RUST_TARGET"' "$f" || { echo "$f: cargo does not build --target \$RUST_TARGET"; return 1; }
  grep -qxF 'ARG BIN_DIR=target/image-inputs/${TARGETARCH}' "$f" || { echo "$f: prebuilt BIN_DIR is not per TARGETARCH"; return 1; }
  echo "$f: builder on \$BUILDPLATFORM, cross-compiles for \$TARGETARCH"
}
agent_carries_env() {
  grep -qE -- '-p secrets-injector-agent -p secrets-injector-env' Dockerfile.agent || { echo "the builder does not build secrets-injector-env"; return 1; }
  grep -qF 'release/secrets-injector-env" /out/' Dockerfile.agent || { echo "the builder does not install secrets-injector-env"; return 1; }
  grep -qxF 'COPY --from=builder /out/ /' Dockerfile.agent || { echo "final does not copy /out/"; return 1; }
  grep -qxF 'COPY --chmod=0755 ${BIN_DIR}/agent/ /' Dockerfile.agent || { echo "prebuilt does not copy the agent directory"; return 1; }
  echo "agent image: /secrets-injector-agent and /secrets-injector-env"
}
# `file` on real binaries matches the mapping's arch string (the debug webhook; release ones when built).
binaries_match_arch() {
  local arch checked=0 path desc
  command -v file >/dev/null || { echo "'file' is missing: scripts/install-test-tools.sh installs it"; return 1; }
  for arch in $(scripts/target-for-arch.sh --list); do
    eval "$(scripts/target-for-arch.sh --vars "$arch")"
    for path in "${CARGO_TARGET_DIR:-$root/target}/$RUST_TARGET/release/secrets-injector-"{webhook,agent,env}; do
      [ -x "$path" ] || continue
      desc="$(file -L "$path")"
      case "$desc" in *"$FILE_ARCH"*) ;; *) echo "$path is not $FILE_ARCH: $desc"; return 1 ;; esac
      checked=$((checked + 1))
    done
  done
  eval "$(scripts/target-for-arch.sh --vars "$(scripts/target-for-arch.sh --host)")"
  desc="$(file -L "$webhook_bin")"
  case "$desc" in *"$FILE_ARCH"*) ;; *) echo "$webhook_bin is not $FILE_ARCH: $desc"; return 1 ;; esac
  echo "$((checked + 1)) binaries match their arch's file(1) string"
}
check "target-for-arch.sh: TARGETARCH -> Rust target, unknown arches refused" arch_map
check "target-for-arch.sh: cross linker and crt-static for the other arch" cross_env
check "no x86-only line outside scripts/target-for-arch.sh" no_arch_outside_map
check "Dockerfile.webhook cross-builds for TARGETARCH" dockerfile_cross Dockerfile.webhook
check "Dockerfile.agent cross-builds for TARGETARCH" dockerfile_cross Dockerfile.agent
check "Dockerfile.agent carries secrets-injector-env" agent_carries_env
check "built binaries match the arch mapping (file)" binaries_match_arch

echo
echo "chart checks: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
  printf '  failed: %s\n' "${failures[@]}"
  exit 1
fi
