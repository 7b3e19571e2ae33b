"""Evaluates the chart's admission rules on fixture pods, as the API server would.

  admission_rules.py policy RENDERED.yaml
      The no-silent-skip ValidatingAdmissionPolicy: every CEL expression is taken from the rendered
      chart (not a copy) and evaluated with cel-python (a real CEL implementation) on fixture pods.
  admission_rules.py selectors RENDERED.yaml --namespace NS [--extra-excluded NS]...
      The webhook entries' namespaceSelector/objectSelector and the policy's namespaceSelector,
      evaluated with Kubernetes label-selector semantics on namespace and pod label sets.

Run by scripts/check-chart.sh with the tools venv's python. Prints one line per case; exits 1 on
the first run with any failed case, listing them all.
"""

import argparse
import sys

import yaml

DOMAIN = "secrets-injector.io"
INJECT = f"{DOMAIN}/inject"
STATUS = f"{DOMAIN}/status"
POLICY_API = "admissionregistration.k8s.io/v1"

failures = []


def case(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]


def only(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1:
        sys.exit(f"want exactly one {kind} in the render, found {len(found)}")
    return found[0]


# ---------------------------------------------------------------- policy (CEL)


def pod(annotations=None, labels=None, namespace="team-a"):
    meta = {"name": "app", "namespace": namespace}
    if annotations is not None:
        meta["annotations"] = annotations
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}


SECRET = {f"{DOMAIN}/secret-db": "prod/db"}
# (case name, pod, want allowed)
FIXTURES = [
    ("secret-* annotation, not injected", pod(SECRET), False),
    ("objects annotation, not injected", pod({f"{DOMAIN}/objects": "- objectName: prod/db\n"}), False),
    ("env-* annotation, not injected", pod({f"{DOMAIN}/env-DB_PASSWORD": "db/password"}), False),
    ("env-from annotation, not injected", pod({f"{DOMAIN}/env-from": "db"}), False),
    ("template-* annotation, not injected", pod({f"{DOMAIN}/template-app.conf": "{{ secrets['db'] }}"}), False),
    ("secret-* among other annotations, no labels", pod({**SECRET, "example.com/owner": "team-a", f"{DOMAIN}/mode": "sidecar"}), False),
    ("pod label inject=enabled but the webhook was bypassed", pod(SECRET, {INJECT: "enabled"}), False),
    ("annotation inject: \"true\" is not an opt-out", pod({**SECRET, INJECT: "true"}), False),
    ("label inject=false is not an opt-out (only disabled)", pod(SECRET, {INJECT: "false"}), False),
    ("injected (status annotation)", pod({**SECRET, STATUS: "injected"}), True),
    ("injected sidecar with env and template", pod({f"{DOMAIN}/env-X": "x", f"{DOMAIN}/template-t": "{{ 1 }}", STATUS: "injected"}), True),
    ("opted out: annotation inject: \"false\"", pod({**SECRET, INJECT: "false"}), True),
    ("opted out: annotation inject: \"disabled\"", pod({**SECRET, INJECT: "disabled"}), True),
    ("opted out: label inject=disabled", pod(SECRET, {INJECT: "disabled", "app": "x"}), True),
    ("unannotated pod", pod(), True),
    ("empty annotations and labels", pod({}, {}), True),
    ("annotations that name no secret", pod({f"{DOMAIN}/mode": "sidecar", f"{DOMAIN}/format-db": "files", "example.com/secret-x": "y"}), True),
    ("a key that only looks like secret-*", pod({f"{DOMAIN}/secretary": "x", f"{DOMAIN}/objects-note": "x"}), True),
]


def check_policy(path):
    import celpy  # cel-python, pinned in scripts/install-test-tools.sh

    docs = load(path)
    vap = only(docs, "ValidatingAdmissionPolicy")
    binding = only(docs, "ValidatingAdmissionPolicyBinding")
    case("policy and binding are admissionregistration.k8s.io/v1",
         vap["apiVersion"] == POLICY_API and binding["apiVersion"] == POLICY_API)
    bspec = binding.get("spec", {})
    case("binding points at the policy and denies",
         bspec.get("policyName") == vap["metadata"]["name"] and bspec.get("validationActions") == ["Deny"], str(bspec))
    spec = vap["spec"]
    case("policy failurePolicy is Fail", spec.get("failurePolicy") == "Fail", str(spec.get("failurePolicy")))
    rules = spec.get("matchConstraints", {}).get("resourceRules", [])
    case("policy matches CREATE of v1 pods only",
         rules == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}], str(rules))

    env = celpy.Environment()

    def compile_(name, text):
        try:
            return env.program(env.compile(text))
        except Exception as e:  # a parse error is a broken policy: report it, do not crash
            case(f"CEL compiles: {name}", False, f"{type(e).__name__}: {e}")
            return None

    variables = [(v["name"], compile_(f"variables.{v['name']}", v["expression"])) for v in spec.get("variables", [])]
    validations = spec.get("validations", [])
    case("one validation", len(validations) == 1, str(len(validations)))
    if failures:
        return
    val = validations[0]
    expr = compile_("validation", val["expression"])
    msg_expr = compile_("messageExpression", val["messageExpression"]) if "messageExpression" in val else None
    static_msg = val.get("message", "")
    case("static message has no line break and says what to label",
         "\n" not in static_msg and f"{INJECT}=enabled" in static_msg and 'inject: "false"' in static_msg, static_msg)
    if failures:
        return

    def run(program, activation):
        out = program.evaluate(activation)
        if isinstance(out, Exception):
            raise out
        return out

    for name, p, want_allowed in FIXTURES:
        ns = p["metadata"]["namespace"]
        act = {"object": celpy.json_to_cel(p), "oldObject": None,
               "request": celpy.json_to_cel({"namespace": ns, "operation": "CREATE", "name": "app"})}
        try:
            vals = {}
            for vname, vprog in variables:
                act["variables"] = celpy.json_to_cel(vals)
                vals[vname] = bool(run(vprog, act))
            act["variables"] = celpy.json_to_cel(vals)
            allowed = bool(run(expr, act))
        except Exception as e:
            case(f"policy: {name}", False, f"CEL evaluation error {type(e).__name__}: {e}")
            continue
        if allowed != want_allowed:
            case(f"policy: {name}", False, f"{'allowed' if allowed else 'denied'}, want {'allowed' if want_allowed else 'denied'}; variables {vals}")
            continue
        if allowed:
            case(f"policy: {name} -> allowed", True)
            continue
        message = static_msg
        if msg_expr is not None:
            try:
                message = str(run(msg_expr, act))
            except Exception as e:
                case(f"policy: {name}", False, f"messageExpression error {type(e).__name__}: {e}")
                continue
        ok = (f"label namespace {ns} {INJECT}=enabled" in message and f"the pod {INJECT}=enabled" in message
              and "\n" not in message and len(message) <= 5000)
        case(f"policy: {name} -> denied with the label message", ok, message)


# ---------------------------------------------------------------- selectors


def selector_matches(selector, labels):
    """Kubernetes LabelSelector semantics; an absent selector matches everything."""
    if selector is None:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown operator {op}")
    return True


def check_selectors(path, release_ns, extra_excluded):
    docs = load(path)
    hooks = only(docs, "MutatingWebhookConfiguration")["webhooks"]
    policies = [d for d in docs if d.get("kind") == "ValidatingAdmissionPolicy"]
    policy = policies[0]["spec"]["matchConstraints"] if policies else None

    def ns_labels(name, inject=None):
        labels = {"kubernetes.io/metadata.name": name}
        if inject:
            labels[INJECT] = inject
        return labels

    def sent_to(ns, pod_labels):
        return [h["name"] for h in hooks
                if selector_matches(h.get("namespaceSelector"), ns) and selector_matches(h.get("objectSelector"), pod_labels)]

    NS, POD = "namespace.secrets-injector.io", "pod.secrets-injector.io"
    cases = [
        # (namespace labels, pod labels, entries that must receive the pod)
        (ns_labels("team-a", "enabled"), {}, [NS]),
        (ns_labels("team-a", "enabled"), {"app": "x"}, [NS]),
        (ns_labels("team-a", "enabled"), {INJECT: "enabled"}, [NS]),
        (ns_labels("team-a", "enabled"), {INJECT: "disabled"}, []),
        (ns_labels("team-a", "enabled"), {INJECT: "disabled", "app": "x"}, []),
        (ns_labels("team-a"), {INJECT: "enabled"}, [POD]),
        (ns_labels("team-a"), {INJECT: "disabled"}, []),
        (ns_labels("team-a"), {}, []),
        (ns_labels("team-a", "disabled"), {INJECT: "enabled"}, [POD]),
    ]
    for excluded in ["kube-system", "kube-public", "kube-node-lease", release_ns, *extra_excluded]:
        cases.append((ns_labels(excluded, "enabled"), {}, []))
        cases.append((ns_labels(excluded), {INJECT: "enabled"}, []))
    for ns, pod_labels, want in cases:
        got = sent_to(ns, pod_labels)
        desc = f"namespace {ns} / pod labels {pod_labels}"
        case(f"selectors: {desc} -> {want or 'never sent'}", got == want, f"sent to {got}")

    if policy is not None:
        for excluded in ["kube-system", "kube-public", "kube-node-lease", release_ns, *extra_excluded]:
            case(f"policy skips namespace {excluded}",
                 not selector_matches(policy.get("namespaceSelector"), ns_labels(excluded, "enabled")))
        for ns in (ns_labels("team-a"), ns_labels("team-a", "enabled")):
            case(f"policy applies in namespace {ns}", selector_matches(policy.get("namespaceSelector"), ns)
                 and selector_matches(policy.get("objectSelector"), {}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("policy", help="the no-silent-skip policy's CEL on fixture pods")
    pp.add_argument("file")
    ps = sub.add_parser("selectors", help="which webhook entry receives which pod")
    ps.add_argument("file")
    ps.add_argument("--namespace", required=True, help="the release namespace")
    ps.add_argument("--extra-excluded", action="append", default=[], help="webhook.excludeNamespaces")
    a = p.parse_args()
    if a.cmd == "policy":
        check_policy(a.file)
    else:
        check_selectors(a.file, a.namespace, a.extra_excluded)
    if failures:
        print(f"{len(failures)} failed: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
