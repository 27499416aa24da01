"""The kinds the kube-apiserver stand-in serves: table, defaults and validation.

Stands in for kube-apiserver's registry (the binary cannot run here). Per kind: where it is
stored in etcd (same keys as the real server, e.g. nodes under ``/registry/minions``), its
subresources, the server-side defaults clients see (Secret type Opaque, Service ClusterIP and
sessionAffinity, Deployment/DaemonSet strategy and revisionHistoryLimit, container
terminationMessagePath...) and the validation that yields 422 Invalid.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509


@dataclass(frozen=True)
class Resource:
    """One served resource (kube-apiserver's REST storage for a kind)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    definition: str
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    key: str = ""  # etcd key segment; defaults to the plural
    generation: bool = False  # metadata.generation bumps on spec change
    status_split: bool = False  # main resource ignores status; /status ignores everything else
    name_rule: str = "subdomain"
    categories: tuple[str, ...] = ()
    create_on_update: bool = False  # upstream AllowCreateOnUpdate: PUT on a missing object creates it

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def etcd_segment(self) -> str:
        return self.key or self.plural

    def qualified(self) -> str:
        """``configmaps`` or ``deployments.apps`` (as in NotFound messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, "io.k8s.api.core.v1.Namespace", ("ns",),
             ("status",), status_split=True, name_rule="label"),
    Resource("", "v1", "configmaps", "ConfigMap", True, "io.k8s.api.core.v1.ConfigMap", ("cm",)),
    Resource("", "v1", "secrets", "Secret", True, "io.k8s.api.core.v1.Secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, "io.k8s.api.core.v1.ServiceAccount", ("sa",),
             ("token",)),
    Resource("", "v1", "services", "Service", True, "io.k8s.api.core.v1.Service", ("svc",), ("status",),
             key="services/specs", status_split=True, name_rule="dns1035", categories=("all",),
             create_on_update=True),
    Resource("", "v1", "endpoints", "Endpoints", True, "io.k8s.api.core.v1.Endpoints", ("ep",),
             key="services/endpoints", create_on_update=True),
    Resource("", "v1", "nodes", "Node", False, "io.k8s.api.core.v1.Node", ("no",), ("status",), key="minions",
             status_split=True),
    Resource("", "v1", "pods", "Pod", True, "io.k8s.api.core.v1.Pod", ("po",), ("status",), status_split=True,
             categories=("all",)),
    Resource("", "v1", "events", "Event", True, "io.k8s.api.core.v1.Event", ("ev",), create_on_update=True),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True, "io.k8s.api.rbac.v1.Role",
             name_rule="path", create_on_update=True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True,
             "io.k8s.api.rbac.v1.RoleBinding", name_rule="path", create_on_update=True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False,
             "io.k8s.api.rbac.v1.ClusterRole", name_rule="path", create_on_update=True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False,
             "io.k8s.api.rbac.v1.ClusterRoleBinding", name_rule="path", create_on_update=True),
    Resource("apps", "v1", "deployments", "Deployment", True, "io.k8s.api.apps.v1.Deployment", ("deploy",),
             ("status",), generation=True, status_split=True, categories=("all",)),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, "io.k8s.api.apps.v1.DaemonSet", ("ds",),
             ("status",), generation=True, status_split=True, categories=("all",)),
    Resource("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", False,
             "io.k8s.api.certificates.v1.CertificateSigningRequest", ("csr",), ("approval", "status"),
             status_split=True),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True, "io.k8s.api.coordination.v1.Lease",
             create_on_update=True),
)

BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}


def groups() -> dict[str, list[str]]:
    """API group -> served versions (core group is ``""``)."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        out.setdefault(r.group, [])
        if r.version not in out[r.group]:
            out[r.group].append(r.version)
    return out


# ---------------------------------------------------------------------------- validation
class Invalid(Exception):
    """422 Invalid with field causes (each: reason, field, message)."""

    def __init__(self, causes: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{c['field']}: {c['message']}" for c in causes))
        self.causes = causes


def required(field: str) -> dict[str, str]:
    return {"reason": "FieldValueRequired", "field": field, "message": "Required value"}


def invalid(field: str, value: Any, detail: str) -> dict[str, str]:
    return {"reason": "FieldValueInvalid", "field": field,
            "message": f"Invalid value: {json.dumps(value)}: {detail}"}


def unsupported(field: str, value: Any, allowed: list[str]) -> dict[str, str]:
    return {"reason": "FieldValueNotSupported", "field": field,
            "message": f"Unsupported value: {json.dumps(value)}: supported values: "
                       + ", ".join(json.dumps(a) for a in allowed)}


def forbidden(field: str, detail: str) -> dict[str, str]:
    return {"reason": "FieldValueForbidden", "field": field, "message": f"Forbidden: {detail}"}


SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

NAME_MESSAGES = {
    "subdomain": ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                  "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                  "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
    "label": ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
    "dns1035": ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
}


def name_problem(rule: str, name: str) -> str | None:
    """Why ``name`` is not acceptable under the kind's name rule (None when fine)."""
    if rule == "path":
        if name in (".", ".."):
            return f"may not be '{name}'"
        for bad in ("/", "%"):
            if bad in name:
                return f"may not contain '{bad}'"
        return None
    pattern, limit = {"subdomain": (SUBDOMAIN, 253), "label": (LABEL, 63), "dns1035": (DNS1035, 63)}[rule]
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    return None if pattern.match(name) else NAME_MESSAGES[rule]


def validate_meta(res: Resource, obj: dict[str, Any]) -> list[dict[str, str]]:
    """Name, labels and annotation keys (ObjectMeta validation)."""
    meta = obj.get("metadata") or {}
    causes: list[dict[str, str]] = []
    name = meta.get("name")
    if not name:
        causes.append({"reason": "FieldValueRequired", "field": "metadata.name",
                       "message": "Required value: name or generateName is required"})
    else:
        problem = name_problem(res.name_rule, name)
        if problem:
            causes.append(invalid("metadata.name", name, problem))
    for key, value in (meta.get("labels") or {}).items():
        if not _qualified_name_ok(key):
            causes.append(invalid("metadata.labels", key, "name part must consist of alphanumeric characters, "
                                  "'-', '_' or '.', and must start and end with an alphanumeric character"))
        if not isinstance(value, str) or (value and (len(value) > 63 or not QUALIFIED.match(value))):
            causes.append(invalid("metadata.labels", value, "a valid label must be an empty string or consist of "
                                  "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                                  "alphanumeric character"))
    for key in (meta.get("annotations") or {}):
        if not _qualified_name_ok(key):
            causes.append(invalid("metadata.annotations", key, "name part must consist of alphanumeric "
                                  "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                                  "character"))
    return causes


def _qualified_name_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not SUBDOMAIN.match(prefix)):
        return False
    return bool(name) and len(name) <= 63 and bool(QUALIFIED.match(name))


def _config_keys(obj: dict[str, Any], field: str) -> list[dict[str, str]]:
    causes = []
    for key, value in (obj.get(field) or {}).items():
        if not CONFIG_KEY.match(key):
            causes.append(invalid(f"{field}[{key}]", key, "a valid config key must consist of alphanumeric "
                                  "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                  "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
    return causes


def validate_containers(spec: dict[str, Any], path: str) -> list[dict[str, str]]:
    """Pod spec essentials: at least one container, each with a unique name and an image."""
    causes: list[dict[str, str]] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(required(f"{path}.containers"))
    seen: set[str] = set()
    for kind in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(kind) or []):
            where = f"{path}.{kind}[{i}]"
            name = c.get("name")
            if not name:
                causes.append(required(f"{where}.name"))
            elif not LABEL.match(name):
                causes.append(invalid(f"{where}.name", name, NAME_MESSAGES["label"]))
            elif name in seen:
                causes.append({"reason": "FieldValueDuplicate", "field": f"{where}.name",
                               "message": f"Duplicate value: {json.dumps(name)}"})
            seen.add(name or "")
            if not c.get("image"):
                causes.append(required(f"{where}.image"))
    for i, v in enumerate(spec.get("volumes") or []):
        if not v.get("name"):
            causes.append(required(f"{path}.volumes[{i}].name"))
    return causes


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def validate_workload(obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
    """Deployment/DaemonSet: selector required, matching the template, immutable."""
    spec = obj.get("spec") or {}
    causes: list[dict[str, str]] = []
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(required("spec.selector"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and not _selector_matches(selector, labels):
        causes.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template "
                              "`labels`"))
    causes += validate_containers(template.get("spec") or {}, "spec.template.spec")
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(invalid("spec.selector", selector, "field is immutable"))
    if "replicas" in spec and (not isinstance(spec["replicas"], int) or spec["replicas"] < 0):
        causes.append(invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0"))
    return causes


def validate_rules(obj: dict[str, Any]) -> list[dict[str, str]]:
    """Role/ClusterRole: each rule has verbs and either resources+apiGroups or nonResourceURLs."""
    causes: list[dict[str, str]] = []
    for i, rule in enumerate(obj.get("rules") or []):
        if not rule.get("verbs"):
            causes.append(required(f"rules[{i}].verbs"))
        if rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("apiGroups")):
            causes.append(invalid(f"rules[{i}].nonResourceURLs", rule["nonResourceURLs"],
                                  "rules cannot apply to both regular resources and non-resource URLs"))
        if not rule.get("nonResourceURLs"):
            if not rule.get("resources"):
                causes.append(required(f"rules[{i}].resources"))
            if rule.get("apiGroups") is None:
                causes.append(required(f"rules[{i}].apiGroups"))
    return causes


def validate_binding(res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
    """RoleBinding/ClusterRoleBinding: a valid roleRef (immutable) and valid subjects."""
    causes: list[dict[str, str]] = []
    ref = obj.get("roleRef") or {}
    kinds = ["Role", "ClusterRole"] if res.kind == "RoleBinding" else ["ClusterRole"]
    if not ref.get("name"):
        causes.append(required("roleRef.name"))
    if ref.get("kind") not in kinds:
        causes.append(unsupported("roleRef.kind", ref.get("kind", ""), kinds))
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        causes.append(unsupported("roleRef.apiGroup", ref.get("apiGroup", ""), ["rbac.authorization.k8s.io"]))
    for i, s in enumerate(obj.get("subjects") or []):
        if not s.get("name"):
            causes.append(required(f"subjects[{i}].name"))
        if s.get("kind") not in ("User", "Group", "ServiceAccount"):
            causes.append(unsupported(f"subjects[{i}].kind", s.get("kind", ""), ["Group", "ServiceAccount", "User"]))
        elif s["kind"] == "ServiceAccount" and not s.get("namespace") and res.kind == "ClusterRoleBinding":
            causes.append(required(f"subjects[{i}].namespace"))
    if old is not None and (old.get("roleRef") or {}) != ref:
        causes.append(invalid("roleRef", ref, "cannot change roleRef"))
    return causes


def validate_csr(obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
    """CertificateSigningRequest: a PEM CSR, signerName and usages; spec immutable."""
    spec = obj.get("spec") or {}
    causes: list[dict[str, str]] = []
    request = spec.get("request")
    if not request:
        causes.append(required("spec.request"))
    else:
        try:
            x509.load_pem_x509_csr(base64.b64decode(request))
        except ValueError:
            causes.append(invalid("spec.request", "<binary>", "PEM block type must be CERTIFICATE REQUEST"))
    if not spec.get("signerName"):
        causes.append(required("spec.signerName"))
    if not spec.get("usages"):
        causes.append(required("spec.usages"))
    cert = (obj.get("status") or {}).get("certificate")
    if cert:
        try:
            x509.load_pem_x509_certificates(base64.b64decode(cert))
        except ValueError:
            causes.append(invalid("status.certificate", "<certificate data>", "must contain at least one "
                                  "CERTIFICATE PEM block"))
    for i, cond in enumerate((obj.get("status") or {}).get("conditions") or []):
        if not cond.get("type"):
            causes.append(required(f"status.conditions[{i}].type"))
    return causes


def validate_service(obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
    """Service: ports for ClusterIP-like types, valid port numbers and protocols."""
    spec = obj.get("spec") or {}
    causes: list[dict[str, str]] = []
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(unsupported("spec.type", stype, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
    ports = spec.get("ports") or []
    if stype != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        causes.append(required("spec.ports"))
    names: set[str] = set()
    for i, p in enumerate(ports):
        port = p.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            causes.append(invalid(f"spec.ports[{i}].port", port, "must be between 1 and 65535, inclusive"))
        if len(ports) > 1 and not p.get("name"):
            causes.append(required(f"spec.ports[{i}].name"))
        if p.get("name") in names:
            causes.append({"reason": "FieldValueDuplicate", "field": f"spec.ports[{i}].name",
                           "message": f"Duplicate value: {json.dumps(p.get('name'))}"})
        names.add(p.get("name", ""))
        if p.get("protocol") not in ("TCP", "UDP", "SCTP"):
            causes.append(unsupported(f"spec.ports[{i}].protocol", p.get("protocol"), ["SCTP", "TCP", "UDP"]))
    if old is not None:
        before = (old.get("spec") or {}).get("clusterIP")
        if before and spec.get("clusterIP") not in (before,):
            causes.append(invalid("spec.clusterIPs[0]", spec.get("clusterIP"), "may not change once set"))
    return causes


def _pod_spec_core(obj: dict[str, Any]) -> str:
    """The parts of a pod spec upstream never lets an update change."""
    spec = json.loads(json.dumps(obj.get("spec") or {}))
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        spec.pop(key, None)
    for kind in ("containers", "initContainers"):
        for c in spec.get(kind) or []:
            c.pop("image", None)
    return json.dumps(spec, sort_keys=True)


def validate(res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raise Invalid with every problem of ``obj`` (``old`` is set on update)."""
    causes = validate_meta(res, obj)
    kind = res.kind
    if kind in ("ConfigMap", "Secret"):
        causes += _config_keys(obj, "data")
        if kind == "ConfigMap":
            causes += _config_keys(obj, "binaryData")
            for key in set(obj.get("data") or {}) & set(obj.get("binaryData") or {}):
                causes.append(invalid("data", key, "duplicate of key present in binaryData"))
        if kind == "Secret" and obj.get("type") == "kubernetes.io/tls":
            for key in ("tls.crt", "tls.key"):
                if key not in (obj.get("data") or {}):
                    causes.append(required(f"data[{key}]"))
        if kind == "Secret" and old is not None and old.get("type") != obj.get("type"):
            causes.append(invalid("type", obj.get("type"), "field is immutable"))
        if old is not None and old.get("immutable") and (old.get("data") != obj.get("data")):
            causes.append(forbidden("data", "field is immutable when `immutable` is set"))
    elif kind == "Pod":
        causes += validate_containers(obj.get("spec") or {}, "spec")
        if old is not None and _pod_spec_core(obj) != _pod_spec_core(old):
            causes.append(forbidden("spec", "pod updates may not change fields other than `spec.containers[*]."
                                    "image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                                    "`spec.tolerations` (only additions to existing tolerations),"
                                    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                                    "previously negative)"))
    elif kind in ("Deployment", "DaemonSet"):
        causes += validate_workload(obj, old)
    elif kind in ("Role", "ClusterRole"):
        causes += validate_rules(obj)
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        causes += validate_binding(res, obj, old)
    elif kind == "CertificateSigningRequest":
        causes += validate_csr(obj, old)
    elif kind == "Service":
        causes += validate_service(obj, old)
    elif kind == "Node":
        for i, t in enumerate((obj.get("spec") or {}).get("taints") or []):
            if not t.get("key"):
                causes.append(required(f"spec.taints[{i}].key"))
            if t.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                causes.append(unsupported(f"spec.taints[{i}].effect", t.get("effect", ""),
                                          ["NoExecute", "NoSchedule", "PreferNoSchedule"]))
    if causes:
        raise Invalid(causes)


# ---------------------------------------------------------------------------- defaults
def _image_policy(image: str) -> str:
    # Upstream: Always for ":latest" or no tag, else IfNotPresent.
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec: dict[str, Any]) -> None:
    """Pod spec defaults as kubectl/kubernetes-client users see them."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for kind in ("initContainers", "containers"):
        for c in spec.get(kind) or []:
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", _image_policy(c.get("image", "")))
            c.setdefault("resources", {})
            for p in c.get("ports") or []:
                p.setdefault("protocol", "TCP")
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("fieldRef")
                if ref is not None:
                    ref.setdefault("apiVersion", "v1")
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                pr = c.get(probe)
                if pr:
                    for k, v in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                                 ("failureThreshold", 3)):
                        pr.setdefault(k, v)
                    if "httpGet" in pr:
                        pr["httpGet"].setdefault("path", "/")
                        pr["httpGet"].setdefault("scheme", "HTTP")
    for v in spec.get("volumes") or []:
        if "configMap" in v:
            v["configMap"].setdefault("defaultMode", 420)
        if "secret" in v:
            v["secret"].setdefault("defaultMode", 420)
        if "hostPath" in v:
            v["hostPath"].setdefault("type", "")


def qos_class(spec: dict[str, Any]) -> str:
    """Pod QoS as upstream computes it from container requests and limits."""
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    for req, lim in zip(requests, limits):
        for res in ("cpu", "memory"):
            if res not in lim or req.get(res, lim[res]) != lim[res]:
                return "Burstable"
    return "Guaranteed"


def apply_defaults(res: Resource, obj: dict[str, Any], service_ip: str | None = None) -> None:
    """Fill server-side defaults in place (what a GET after create shows)."""
    kind = res.kind
    if kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if service_ip and not spec.get("clusterIP"):
            spec["clusterIP"] = service_ip
        if spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            fam = "IPv6" if ":" in spec["clusterIP"] else "IPv4"
            spec.setdefault("ipFamilies", [fam])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif kind == "Pod":
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", qos_class(spec))
    elif kind in ("Deployment", "DaemonSet"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("revisionHistoryLimit", 10)
        tmpl = spec.setdefault("template", {})
        tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        default_pod_spec(tmpl.setdefault("spec", {}))
        if kind == "Deployment":
            spec.setdefault("replicas", 1)
            spec.setdefault("progressDeadlineSeconds", 600)
            strat = spec.setdefault("strategy", {})
            strat.setdefault("type", "RollingUpdate")
            if strat["type"] == "RollingUpdate":
                ru = strat.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
            obj.setdefault("status", {})
        else:
            # DaemonSetStatus counters have no omitempty upstream: clients expect them present.
            status = obj.setdefault("status", {})
            for counter in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                            "numberReady"):
                status.setdefault(counter, 0)
            strat = spec.setdefault("updateStrategy", {})
            strat.setdefault("type", "RollingUpdate")
            if strat["type"] == "RollingUpdate":
                ru = strat.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", 1)
                ru.setdefault("maxSurge", 0)
    elif kind == "Node":
        obj.setdefault("spec", {})
        obj.setdefault("status", {})
    elif kind == "CertificateSigningRequest":
        obj.setdefault("status", {})
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        for s in obj.get("subjects") or []:
            if s.get("kind") in ("User", "Group"):
                s.setdefault("apiGroup", "rbac.authorization.k8s.io")
    elif kind == "ConfigMap" and obj.get("data") is None:
        obj.pop("data", None)


def first_service_ip(cidr: str) -> str:
    """The first usable address of the first service CIDR (the ``kubernetes`` Service IP)."""
    net = ipaddress.ip_network(cidr.split(",")[0].strip(), strict=False)
    return str(net.network_address + 1)


def service_net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr.split(",")[0].strip(), strict=False)


def field_value(res: Resource, obj: dict[str, Any], field: str) -> str | None:
    """A field selector's value for ``obj`` (None: the field is not selectable on this kind)."""
    meta = obj.get("metadata") or {}
    if field == "metadata.name":
        return meta.get("name", "")
    if field == "metadata.namespace":
        return meta.get("namespace", "")
    supported: dict[str, dict[str, Any]] = {
        "Pod": {"spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
                "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
                "spec.schedulerName": lambda o: (o.get("spec") or {}).get("schedulerName", ""),
                "spec.serviceAccountName": lambda o: (o.get("spec") or {}).get("serviceAccountName", "")},
        "Secret": {"type": lambda o: o.get("type", "")},
        "Node": {"spec.unschedulable": lambda o: str(bool((o.get("spec") or {}).get("unschedulable"))).lower()},
        "Namespace": {"status.phase": lambda o: (o.get("status") or {}).get("phase", "")},
        "CertificateSigningRequest": {"spec.signerName": lambda o: (o.get("spec") or {}).get("signerName", "")},
        "Event": {**{f"involvedObject.{k}": (lambda k: lambda o: str((o.get("involvedObject") or {}).get(k, "")))(k)
                     for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
                  "reason": lambda o: o.get("reason", ""), "type": lambda o: o.get("type", ""),
                  "source": lambda o: (o.get("source") or {}).get("component", ""),
                  "reportingComponent": lambda o: o.get("reportingComponent", "")},
    }
    getter = supported.get(res.kind, {}).get(field)
    return None if getter is None else getter(obj)
