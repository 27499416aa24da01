"""Authorization for the kube-apiserver stand-in: ``Node,RBAC`` plus the default policy.

Stands in for kube-apiserver's authorizers (the binary cannot run here). RBAC is evaluated
from the Role/ClusterRole/RoleBinding/ClusterRoleBinding objects in the store, so kubefab's
own RBAC phases are what make joins work. ``system:masters`` is all-powerful, as in the real
server (it short-circuits before RBAC). The Node authorizer is SIMPLIFIED: a ``system:nodes``
member ``system:node:<name>`` may read nodes/pods/services, write its own Node and Lease,
mirror pods and pod status, and create/read CSRs; the real one follows the pod graph for
secrets/configmaps, which the stand-in does not (those need RBAC here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

MASTERS = "system:masters"
NODES = "system:nodes"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"


@dataclass(frozen=True)
class User:
    """An authenticated (or anonymous) identity."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do (kube-apiserver's authorizer.Attributes)."""

    user: User
    verb: str
    resource_request: bool
    path: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


# ---------------------------------------------------------------------------- rule matching
def _rule_allows(rule: dict[str, Any], a: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.resource_request:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == a.path or (url.endswith("*") and a.path.startswith(url[:-1])):
                return True
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and a.group not in groups:
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resources = rule.get("resources") or []
    if not any(r == "*" or r == combined or (a.subresource and r == f"*/{a.subresource}") for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _subject_matches(subject: dict[str, Any], user: User, binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.name == f"system:serviceaccount:{ns}:{name}"
    return False


Lister = Callable[[str, str | None], list[dict[str, Any]]]
"""lister(resource, namespace or None) -> stored objects of that RBAC resource."""


def rbac_allows(a: Attributes, lister: Lister) -> bool:
    """Evaluate stored RBAC objects for ``a`` (missing roles simply grant nothing)."""
    clusterroles = {o["metadata"]["name"]: o for o in lister("clusterroles", None)}

    def rules_of(ref: dict[str, Any], ns: str) -> Iterable[dict[str, Any]]:
        if ref.get("kind") == "ClusterRole":
            return (clusterroles.get(ref.get("name", "")) or {}).get("rules") or []
        if ref.get("kind") == "Role":
            roles = [o for o in lister("roles", ns) if o["metadata"]["name"] == ref.get("name")]
            return roles[0].get("rules") or [] if roles else []
        return []

    for crb in lister("clusterrolebindings", None):
        if any(_subject_matches(s, a.user, "") for s in crb.get("subjects") or []):
            if any(_rule_allows(r, a) for r in rules_of(crb.get("roleRef") or {}, "")):
                return True
    if a.resource_request and a.namespace:
        for rb in lister("rolebindings", a.namespace):
            if any(_subject_matches(s, a.user, a.namespace) for s in rb.get("subjects") or []):
                if any(_rule_allows(r, a) for r in rules_of(rb.get("roleRef") or {}, a.namespace)):
                    return True
    return False


def node_allows(a: Attributes) -> bool:
    """The simplified Node authorizer (see module docstring)."""
    if NODES not in a.user.groups or not a.user.name.startswith("system:node:"):
        return False
    node = a.user.name[len("system:node:"):]
    if not a.resource_request:
        return False
    read = a.verb in ("get", "list", "watch")
    if a.group == "" and a.resource == "nodes":
        return read or a.verb == "create" or (a.name == node and a.verb in ("update", "patch", "delete"))
    if a.group == "" and a.resource == "pods":
        return read or a.verb in ("create", "update", "patch", "delete")
    if a.group == "" and a.resource in ("services", "endpoints", "namespaces") and read:
        return True
    if a.group in ("", "events.k8s.io") and a.resource == "events":
        return a.verb in ("create", "update", "patch")
    if a.group == "coordination.k8s.io" and a.resource == "leases" and a.namespace == "kube-node-lease":
        return a.verb in ("create", "get", "list", "watch") or (a.name == node and a.verb in ("update", "patch", "delete"))
    if a.group == "certificates.k8s.io" and a.resource == "certificatesigningrequests" and not a.subresource:
        return a.verb in ("create", "get", "list", "watch")
    if a.group == "authentication.k8s.io" and a.resource == "tokenreviews" and a.verb == "create":
        return True
    if a.group == "authorization.k8s.io" and a.resource == "subjectaccessreviews" and a.verb == "create":
        return True
    return False


def authorize(a: Attributes, lister: Lister, modes: list[str]) -> bool:
    """Run the configured ``--authorization-mode`` chain (``system:masters`` first, as upstream)."""
    if MASTERS in a.user.groups:
        return True
    for mode in modes:
        if mode == "AlwaysAllow":
            return True
        if mode == "Node" and node_allows(a):
            return True
        if mode == "RBAC" and rbac_allows(a, lister):
            return True
    return False


def forbidden_message(a: Attributes) -> str:
    """The real server's 403 message shape."""
    who = f'User "{a.user.name}"'
    if not a.resource_request:
        return f'forbidden: {who} cannot {a.verb} path "{a.path}"'
    res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    head = f'{a.resource} "{a.name}"' if a.name else a.resource
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return f'{head} is forbidden: {who} cannot {a.verb} resource "{res}" in API group "{a.group}" {scope}'


# ---------------------------------------------------------------------------- default policy
def _rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        r["resourceNames"] = names
    return r


def _url_rule(verbs: list[str], urls: list[str]) -> dict[str, Any]:
    return {"nonResourceURLs": urls, "verbs": verbs}


READ = ["get", "list", "watch"]
RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
CSR = "certificates.k8s.io"
LEADER = [
    _rule(["create"], ["coordination.k8s.io"], ["leases"]),
    _rule(["get", "update"], ["coordination.k8s.io"], ["leases"]),
    _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
]

DEFAULT_CLUSTER_ROLES: dict[str, list[dict[str, Any]]] = {
    "cluster-admin": [_rule(["*"], ["*"], ["*"]), _url_rule(["*"], ["*"])],
    "system:discovery": [_url_rule(["get"], ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                             "/openapi", "/openapi/*", "/readyz", "/version", "/version/"])],
    "system:basic-user": [
        _rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
        _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
    ],
    "system:public-info-viewer": [_url_rule(["get"], ["/healthz", "/livez", "/readyz", "/version", "/version/"])],
    "system:node-bootstrapper": [_rule(["create", "get", "list", "watch"], [CSR], ["certificatesigningrequests"])],
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": [
        _rule(["create"], [CSR], ["certificatesigningrequests/nodeclient"])],
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": [
        _rule(["create"], [CSR], ["certificatesigningrequests/selfnodeclient"])],
    "system:node": [
        _rule(["create", "get", "list", "watch", "update", "patch", "delete"], [""], ["nodes"]),
        _rule(["patch", "update"], [""], ["nodes/status"]),
        _rule(READ, [""], ["pods", "services", "endpoints"]),
        _rule(["create", "delete"], [""], ["pods"]),
        _rule(["patch", "update"], [""], ["pods/status"]),
        _rule(["get"], [""], ["secrets", "configmaps", "persistentvolumeclaims", "persistentvolumes"]),
        _rule(["create", "get", "list", "watch"], [CSR], ["certificatesigningrequests"]),
        _rule(["create", "delete", "get", "patch", "update"], ["coordination.k8s.io"], ["leases"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews", "localsubjectaccessreviews"]),
    ],
    "system:node-proxier": [
        _rule(["list", "watch"], [""], ["endpoints", "services"]),
        _rule(READ, [""], ["nodes"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"]),
    ],
    "system:kube-controller-manager": [
        *LEADER,
        _rule(["create"], [""], ["endpoints", "secrets", "serviceaccounts"]),
        _rule(["delete"], [""], ["secrets"]),
        _rule(["get"], [""], ["endpoints", "namespaces", "secrets", "serviceaccounts", "configmaps"]),
        _rule(["update"], [""], ["endpoints", "secrets", "serviceaccounts"]),
        _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        _rule(["list", "watch"], ["*"], ["*"]),
        _rule(["create"], [""], ["serviceaccounts/token"]),
    ],
    "system:kube-scheduler": [
        *LEADER,
        _rule(READ, [""], ["nodes", "namespaces", "services", "replicationcontrollers",
                           "persistentvolumeclaims", "persistentvolumes", "configmaps"]),
        _rule(["delete", "get", "list", "watch"], [""], ["pods"]),
        _rule(["create"], [""], ["bindings", "pods/binding"]),
        _rule(["patch", "update"], [""], ["pods/status"]),
        _rule(READ, ["apps"], ["replicasets", "statefulsets"]),
        _rule(READ, ["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"]),
        _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
    ],
    # Controller identities: kube-controller-manager runs with --use-service-account-credentials,
    # so each controller acts as its own ServiceAccount (token from the TokenRequest API).
    "system:controller:certificate-controller": [
        _rule(["delete", "get", "list", "watch"], [CSR], ["certificatesigningrequests"]),
        _rule(["update"], [CSR], ["certificatesigningrequests/status", "certificatesigningrequests/approval"]),
        _rule(["approve"], [CSR], ["signers"], ["kubernetes.io/kube-apiserver-client-kubelet",
                                                "kubernetes.io/legacy-unknown"]),
        _rule(["sign"], [CSR], ["signers"], ["kubernetes.io/legacy-unknown", "kubernetes.io/kube-apiserver-client",
                                             "kubernetes.io/kube-apiserver-client-kubelet",
                                             "kubernetes.io/kubelet-serving"]),
        _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    ],
    "system:controller:generic-garbage-collector": [
        _rule(["delete", "get", "list", "patch", "update", "watch"], ["*"], ["*"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    ],
    "system:controller:root-ca-cert-publisher": [
        _rule(["create", "update"], [""], ["configmaps"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    ],
    "system:controller:service-account-controller": [
        _rule(["create"], [""], ["serviceaccounts"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    ],
    # admin/edit/view are aggregated upstream; flattened (core, apps, rbac read) here.
    "admin": [_rule(RW, ["", "apps", "rbac.authorization.k8s.io", "coordination.k8s.io"], ["*"])],
    "edit": [_rule(RW, ["", "apps", "coordination.k8s.io"],
                   ["pods", "services", "configmaps", "secrets", "serviceaccounts", "deployments",
                    "daemonsets", "leases", "endpoints", "persistentvolumeclaims"])],
    "view": [_rule(READ, ["", "apps", "coordination.k8s.io"],
                   ["pods", "services", "configmaps", "serviceaccounts", "deployments", "daemonsets",
                    "leases", "endpoints", "persistentvolumeclaims", "namespaces"])],
}


def _subjects(*groups: str, users: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]
    return out + [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users]


def _sa(name: str, namespace: str = "kube-system") -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


DEFAULT_CLUSTER_ROLE_BINDINGS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "cluster-admin": ("cluster-admin", _subjects(MASTERS)),
    "system:discovery": ("system:discovery", _subjects(AUTHENTICATED)),
    "system:basic-user": ("system:basic-user", _subjects(AUTHENTICATED)),
    "system:public-info-viewer": ("system:public-info-viewer", _subjects(AUTHENTICATED, UNAUTHENTICATED)),
    "system:kube-controller-manager": ("system:kube-controller-manager",
                                       _subjects(users=("system:kube-controller-manager",))),
    "system:kube-scheduler": ("system:kube-scheduler", _subjects(users=("system:kube-scheduler",))),
    "system:node-proxier": ("system:node-proxier", _subjects(users=("system:kube-proxy",))),
    "system:controller:certificate-controller": ("system:controller:certificate-controller",
                                                 [_sa("certificate-controller")]),
    "system:controller:generic-garbage-collector": ("system:controller:generic-garbage-collector",
                                                    [_sa("generic-garbage-collector")]),
    "system:controller:root-ca-cert-publisher": ("system:controller:root-ca-cert-publisher",
                                                 [_sa("root-ca-cert-publisher")]),
    "system:controller:service-account-controller": ("system:controller:service-account-controller",
                                                     [_sa("service-account-controller")]),
}

EVENTS = _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"])
DEFAULT_ROLES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("kube-system", "system:controller:bootstrap-signer"): [_rule(READ, [""], ["secrets"])],
    ("kube-system", "system:controller:token-cleaner"): [_rule(["delete", "get", "list", "watch"], [""], ["secrets"]),
                                                         EVENTS],
    ("kube-system", "extension-apiserver-authentication-reader"): [
        _rule(READ, [""], ["configmaps"], ["extension-apiserver-authentication"])],
    ("kube-system", "system::leader-locking-kube-controller-manager"): [
        _rule(["watch"], [""], ["configmaps"]),
        _rule(["get", "update"], [""], ["configmaps"], ["kube-controller-manager"])],
    ("kube-system", "system::leader-locking-kube-scheduler"): [
        _rule(["watch"], [""], ["configmaps"]),
        _rule(["get", "update"], [""], ["configmaps"], ["kube-scheduler"])],
    ("kube-public", "system:controller:bootstrap-signer"): [
        _rule(READ, [""], ["configmaps"]),
        _rule(["update"], [""], ["configmaps"], ["cluster-info"]),
        EVENTS],
}
DEFAULT_ROLE_BINDINGS: dict[tuple[str, str], tuple[str, list[dict[str, Any]]]] = {
    ("kube-system", "system:controller:bootstrap-signer"): ("system:controller:bootstrap-signer",
                                                            [_sa("bootstrap-signer")]),
    ("kube-system", "system:controller:token-cleaner"): ("system:controller:token-cleaner", [_sa("token-cleaner")]),
    ("kube-system", "system::extension-apiserver-authentication-reader"): (
        "extension-apiserver-authentication-reader",
        _subjects(users=("system:kube-controller-manager", "system:kube-scheduler"))),
    ("kube-system", "system::leader-locking-kube-controller-manager"): (
        "system::leader-locking-kube-controller-manager",
        _subjects(users=("system:kube-controller-manager",)) + [_sa("kube-controller-manager")]),
    ("kube-system", "system::leader-locking-kube-scheduler"): (
        "system::leader-locking-kube-scheduler",
        _subjects(users=("system:kube-scheduler",)) + [_sa("kube-scheduler")]),
    ("kube-public", "system:controller:bootstrap-signer"): ("system:controller:bootstrap-signer",
                                                            [_sa("bootstrap-signer")]),
}

BOOTSTRAP_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def default_policy_objects() -> list[tuple[str, dict[str, Any]]]:
    """(resource, object) pairs of the default RBAC objects (cluster-wide, then per namespace)."""
    meta = lambda name: {"name": name, "labels": dict(BOOTSTRAP_LABELS),  # noqa: E731
                         "annotations": dict(BOOTSTRAP_ANNOTATIONS)}
    out: list[tuple[str, dict[str, Any]]] = []
    for name, rules in DEFAULT_CLUSTER_ROLES.items():
        out.append(("clusterroles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                     "metadata": meta(name), "rules": rules}))
    for name, (role, subjects) in DEFAULT_CLUSTER_ROLE_BINDINGS.items():
        out.append(("clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects}))
    for (ns, name), rules in DEFAULT_ROLES.items():
        out.append(("roles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                              "metadata": {**meta(name), "namespace": ns}, "rules": rules}))
    for (ns, name), (role, subjects) in DEFAULT_ROLE_BINDINGS.items():
        out.append(("rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {**meta(name), "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": subjects}))
    return out
