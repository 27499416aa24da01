"""Conformance of the kube-apiserver stand-in, checked with the real clients.

The stand-in replaces a binary these machines cannot run; these tests pin the behaviour kubefab
relies on, through the official ``kubernetes`` client (HTTPS, client certs, bearer tokens), raw
HTTPS where headers matter, the real ``kubectl`` and the real etcd underneath.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import shutil
import ssl
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from tests.integration.standin_fixtures import (  # noqa: F401  (pytest fixtures)
    ApiServerProcess, EtcdProcess, LabPki, cached_key, free_port, make_ca, make_leaf, start_apiserver, start_etcd,
    standin_apiserver, standin_etcd, standin_pki, standin_tmp)
from tests.lab.standins.store import EtcdStore

pytestmark = pytest.mark.lab

MASTERS = ["system:masters"]


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="session")
def admin(standin_pki: LabPki, standin_apiserver: ApiServerProcess) -> k8s.ApiClient:
    return standin_pki.client(standin_apiserver.url, "kubernetes-admin", MASTERS)


@pytest.fixture(scope="session")
def core(admin: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(admin)


@pytest.fixture(scope="session")
def apps(admin: k8s.ApiClient) -> k8s.AppsV1Api:
    return k8s.AppsV1Api(admin)


@pytest.fixture(scope="session")
def rbac_api(admin: k8s.ApiClient) -> k8s.RbacAuthorizationV1Api:
    return k8s.RbacAuthorizationV1Api(admin)


@pytest.fixture()
def ns(core: k8s.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test, so tests stay independent on the shared store."""
    name = "t-" + uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": name}})
    yield name


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def expect_error(code: int, reason: str, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        fn(*args, **kwargs)
    body = status_of(info.value)
    assert info.value.status == code, body
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["reason"] == reason and body["code"] == code, body
    return body


class Raw:
    """Raw HTTPS to the stand-in, for headers (Warning) and exact bodies."""

    def __init__(self, pki: LabPki, port: int, user: str | None = None, groups: list[str] = (),  # type: ignore[assignment]
                 token: str | None = None) -> None:
        self.ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
        if user:
            self.ctx.load_cert_chain(*pki.client_cert(user, groups))
        self.port, self.token = port, token

    def __call__(self, method: str, path: str, body: Any = None, ctype: str = "application/json"
                 ) -> tuple[int, Any, http.client.HTTPMessage]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        headers = {"Content-Type": ctype, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = raw.decode()
        return resp.status, data, resp.headers


@pytest.fixture(scope="session")
def raw_admin(standin_pki: LabPki, standin_apiserver: ApiServerProcess) -> Raw:
    return Raw(standin_pki, standin_apiserver.port, "kubernetes-admin", MASTERS)


def etcd_store(pki: LabPki, etcd: EtcdProcess) -> EtcdStore:
    return EtcdStore([etcd.url], cafile=pki.path("etcd/ca.crt"), certfile=pki.path("apiserver-etcd-client.crt"),
                     keyfile=pki.path("apiserver-etcd-client.key"))


def make_csr_pem(cn: str, orgs: list[str]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
                     + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def token_secret(token_id: str, secret: str, *, expiration: str | None = None, auth: bool = True,
                 groups: str = "system:bootstrappers:kubeadm:default-node-token") -> dict[str, Any]:
    """A bootstrap token Secret shaped as kubeadm writes it (reference §6)."""
    data = {"token-id": token_id, "token-secret": secret, "usage-bootstrap-signing": "true",
            "auth-extra-groups": groups}
    if auth:
        data["usage-bootstrap-authentication"] = "true"
    if expiration:
        data["expiration"] = expiration
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "stringData": data}


def whoami(api: k8s.ApiClient) -> dict[str, Any]:
    out = k8s.AuthenticationV1Api(api).create_self_subject_review({"apiVersion": "authentication.k8s.io/v1",
                                                                    "kind": "SelfSubjectReview"})
    return out.status.user_info.to_dict()


# ---------------------------------------------------------------------------- server basics
@pytest.mark.parametrize("path,expected", [("/livez", "ok"), ("/readyz", "ok"), ("/healthz", "ok")])
def test_health_endpoints_anonymous(standin_pki: LabPki, standin_apiserver: ApiServerProcess, path: str,
                                    expected: str) -> None:
    code, body, _ = Raw(standin_pki, standin_apiserver.port)("GET", path)
    assert (code, body) == (200, expected)


def test_version_reports_git_version(standin_pki: LabPki, standin_apiserver: ApiServerProcess) -> None:
    code, body, _ = Raw(standin_pki, standin_apiserver.port)("GET", "/version")
    assert code == 200 and body["gitVersion"] == "v1.36.0" and (body["major"], body["minor"]) == ("1", "36")


def test_discovery_lists_groups_and_resources(raw_admin: Raw) -> None:
    code, api, _ = raw_admin("GET", "/api")
    assert code == 200 and api["versions"] == ["v1"]
    _, v1, _ = raw_admin("GET", "/api/v1")
    names = {r["name"] for r in v1["resources"]}
    assert {"configmaps", "secrets", "nodes", "pods", "pods/status", "namespaces", "services"} <= names
    _, groups, _ = raw_admin("GET", "/apis")
    assert {"apps", "rbac.authorization.k8s.io", "certificates.k8s.io"} <= {g["name"] for g in groups["groups"]}
    _, certs, _ = raw_admin("GET", "/apis/certificates.k8s.io/v1")
    assert {"certificatesigningrequests/approval", "certificatesigningrequests/status"} <= \
        {r["name"] for r in certs["resources"]}


def test_anonymous_cannot_discover(standin_pki: LabPki, standin_apiserver: ApiServerProcess) -> None:
    code, body, _ = Raw(standin_pki, standin_apiserver.port)("GET", "/api")
    assert code == 403
    assert body["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'


def test_bootstrap_policy_objects(core: k8s.CoreV1Api, rbac_api: k8s.RbacAuthorizationV1Api) -> None:
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    roles = {r.metadata.name for r in rbac_api.list_cluster_role().items}
    assert {"cluster-admin", "system:discovery", "system:basic-user", "system:public-info-viewer",
            "system:node-bootstrapper", "system:node", "system:node-proxier",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            "system:kube-controller-manager", "system:kube-scheduler"} <= roles
    crb = rbac_api.read_cluster_role_binding("cluster-admin")
    assert [(s.kind, s.name) for s in crb.subjects] == [("Group", "system:masters")]
    piv = rbac_api.read_cluster_role_binding("system:public-info-viewer")
    assert {s.name for s in piv.subjects} == {"system:authenticated", "system:unauthenticated"}
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "10.96.0.1" and svc.spec.ports[0].port == 443


# ---------------------------------------------------------------------------- CRUD and Status bodies
def test_configmap_lifecycle(core: k8s.CoreV1Api, ns: str) -> None:
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    assert cm.metadata.uid and cm.metadata.creation_timestamp and int(cm.metadata.resource_version) > 0
    body = expect_error(409, "AlreadyExists", core.create_namespaced_config_map, ns,
                        {"metadata": {"name": "cfg"}})
    assert body["message"] == 'configmaps "cfg" already exists'
    assert body["details"] == {"name": "cfg", "kind": "configmaps"}
    got = core.read_namespaced_config_map("cfg", ns)
    assert got.data == {"a": "1"} and got.metadata.resource_version == cm.metadata.resource_version
    got.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("cfg", ns, got)
    assert int(updated.metadata.resource_version) > int(cm.metadata.resource_version)
    assert updated.metadata.uid == cm.metadata.uid
    stale = got
    stale.data = {"a": "3"}
    body = expect_error(409, "Conflict", core.replace_namespaced_config_map, "cfg", ns, stale)
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "cfg": the object has been '
                                      "modified")
    core.delete_namespaced_config_map("cfg", ns)
    body = expect_error(404, "NotFound", core.read_namespaced_config_map, "cfg", ns)
    assert body["message"] == 'configmaps "cfg" not found' and body["details"]["name"] == "cfg"


def test_noop_update_keeps_resource_version(core: k8s.CoreV1Api, ns: str) -> None:
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "same"}, "data": {"a": "1"}})
    again = core.replace_namespaced_config_map("same", ns, cm)
    assert again.metadata.resource_version == cm.metadata.resource_version


def test_stored_like_the_real_server(standin_pki: LabPki, standin_etcd: EtcdProcess, core: k8s.CoreV1Api,
                                     ns: str) -> None:
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "etcd-view"}, "data": {"k": "v"}})
    core.create_node({"metadata": {"name": f"node-{ns}"}})
    store = etcd_store(standin_pki, standin_etcd)
    kv = store.get(f"/registry/configmaps/{ns}/etcd-view")
    assert kv is not None and str(kv.mod_revision) == cm.metadata.resource_version
    stored = json.loads(kv.value)
    assert stored["kind"] == "ConfigMap" and stored["data"] == {"k": "v"}
    assert "resourceVersion" not in stored["metadata"]
    assert store.get(f"/registry/minions/node-{ns}") is not None
    assert store.get("/registry/services/specs/default/kubernetes") is not None


@pytest.mark.parametrize("kind,body,field", [
    ("configmap", {"metadata": {"name": "Bad_Name"}}, "metadata.name"),
    ("configmap", {"metadata": {}}, "metadata.name"),
    ("pod", {"metadata": {"name": "p"}, "spec": {"containers": []}}, "spec.containers"),
    ("pod", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}, "spec.containers[0].image"),
    ("service", {"metadata": {"name": "9svc"}, "spec": {"ports": [{"port": 80}]}}, "metadata.name"),
    ("service", {"metadata": {"name": "svc"}, "spec": {}}, "spec.ports"),
    ("deployment", {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "x"}},
        "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
     "spec.template.metadata.labels"),
    ("rolebinding", {"metadata": {"name": "rb"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                             "kind": "Role", "name": ""}}, "roleRef.name"),
    ("role", {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}, "rules[0].verbs"),
    ("secret", {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}}, "data[tls.key]"),
    ("configmap", {"metadata": {"name": "dup"}, "data": {"k": "v"}, "binaryData": {"k": "dg=="}}, "data"),
])
def test_invalid_objects_get_422(raw_admin: Raw, ns: str, kind: str, body: dict[str, Any], field: str) -> None:
    # Raw HTTPS: the Python client's own model validation would refuse some of these first.
    path = {
        "configmap": f"/api/v1/namespaces/{ns}/configmaps",
        "secret": f"/api/v1/namespaces/{ns}/secrets",
        "pod": f"/api/v1/namespaces/{ns}/pods",
        "service": f"/api/v1/namespaces/{ns}/services",
        "deployment": f"/apis/apps/v1/namespaces/{ns}/deployments",
        "rolebinding": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
        "role": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    }[kind]
    code, status, _ = raw_admin("POST", path, body)
    assert code == 422 and status["reason"] == "Invalid" and status["code"] == 422, status
    assert field in [c["field"] for c in status["details"]["causes"]], status
    assert " is invalid: " in status["message"]


def test_namespace_must_exist(core: k8s.CoreV1Api) -> None:
    body = expect_error(404, "NotFound", core.create_namespaced_config_map, "no-such-ns",
                        {"metadata": {"name": "x"}})
    assert body["message"] == 'namespaces "no-such-ns" not found'


def test_generate_name(core: k8s.CoreV1Api, ns: str) -> None:
    a = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "gen-"}})
    b = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "gen-"}})
    assert a.metadata.name.startswith("gen-") and len(a.metadata.name) == 9
    assert a.metadata.name != b.metadata.name


def test_secret_defaults_and_string_data(core: k8s.CoreV1Api, ns: str) -> None:
    s = core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert s.type == "Opaque" and s.data == {"k": base64.b64encode(b"v").decode()} and s.string_data is None


def test_service_cluster_ip_allocation(core: k8s.CoreV1Api, ns: str) -> None:
    dns = core.create_namespaced_service(ns, {"metadata": {"name": "dns"}, "spec": {
        "clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}})
    assert dns.spec.cluster_ip == "10.96.0.10" and dns.spec.type == "ClusterIP"
    assert dns.spec.session_affinity == "None" and dns.spec.ports[0].target_port == 53
    dyn = core.create_namespaced_service(ns, {"metadata": {"name": "dyn"}, "spec": {"ports": [{"port": 80}]}})
    import ipaddress
    assert ipaddress.ip_address(dyn.spec.cluster_ip) in ipaddress.ip_network("10.96.0.0/12")
    assert dyn.spec.cluster_ip not in ("10.96.0.1", "10.96.0.10") and dyn.spec.ports[0].protocol == "TCP"
    taken = expect_error(422, "Invalid", core.create_namespaced_service, ns, {
        "metadata": {"name": "dup"}, "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}})
    assert "already allocated" in taken["message"]
    outside = expect_error(422, "Invalid", core.create_namespaced_service, ns, {
        "metadata": {"name": "out"}, "spec": {"clusterIP": "192.168.0.1", "ports": [{"port": 53}]}})
    assert "not in the valid range" in outside["message"]
    core.delete_namespaced_service("dns", ns)
    again = core.create_namespaced_service(ns, {"metadata": {"name": "dns2"}, "spec": {
        "clusterIP": "10.96.0.10", "ports": [{"port": 53}]}})
    assert again.spec.cluster_ip == "10.96.0.10"


POD_SPEC = {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                            "env": [{"name": "A", "value": "1"}]}]}


def test_deployment_defaults_and_generation(apps: k8s.AppsV1Api, ns: str) -> None:
    d = apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}}})
    assert d.metadata.generation == 1 and d.spec.replicas == 1 and d.spec.revision_history_limit == 10
    assert d.spec.strategy.type == "RollingUpdate" and d.spec.strategy.rolling_update.max_surge == "25%"
    c = d.spec.template.spec.containers[0]
    assert c.termination_message_path == "/dev/termination-log" and c.image_pull_policy == "IfNotPresent"
    assert d.spec.template.spec.restart_policy == "Always" and d.spec.template.spec.dns_policy == "ClusterFirst"
    labelled = apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    body = expect_error(422, "Invalid", apps.patch_namespaced_deployment, "web", ns,
                        {"spec": {"selector": {"matchLabels": {"app": "web", "v": "2"}},
                                  "template": {"metadata": {"labels": {"v": "2"}}}}})
    assert "field is immutable" in body["message"]


def test_daemonset_defaults(apps: k8s.AppsV1Api, ns: str) -> None:
    d = apps.create_namespaced_daemon_set(ns, {"metadata": {"name": "proxy"}, "spec": {
        "selector": {"matchLabels": {"k8s-app": "proxy"}},
        "template": {"metadata": {"labels": {"k8s-app": "proxy"}}, "spec": POD_SPEC}}})
    assert d.spec.update_strategy.type == "RollingUpdate"
    assert d.spec.update_strategy.rolling_update.max_unavailable == 1 and d.spec.revision_history_limit == 10
    assert d.metadata.generation == 1


def test_pod_status_only_through_subresource(core: k8s.CoreV1Api, ns: str) -> None:
    pod = core.create_namespaced_pod(ns, {"metadata": {"name": "p"}, "spec": {**POD_SPEC, "nodeName": "n1"}})
    assert pod.status.phase == "Pending" and pod.spec.containers[0].termination_message_policy == "File"
    pod.status.phase = "Running"
    pod.metadata.labels = {"a": "b"}
    after = core.replace_namespaced_pod("p", ns, pod)
    assert after.status.phase == "Pending" and after.metadata.labels == {"a": "b"}
    st = core.patch_namespaced_pod_status("p", ns, {"status": {"phase": "Running", "podIP": "10.0.0.5"}})
    assert st.status.phase == "Running" and st.status.pod_ip == "10.0.0.5"
    image = core.patch_namespaced_pod("p", ns, {"spec": {"containers": [{"name": "app", "image": "pause:3.11"}]}})
    assert image.spec.containers[0].image == "pause:3.11"
    body = expect_error(422, "Invalid", core.patch_namespaced_pod, "p", ns, {"spec": {"nodeName": "elsewhere"}})
    assert "pod updates may not change fields" in body["message"]


def test_selectors(core: k8s.CoreV1Api, ns: str) -> None:
    for name, labels, node in (("a", {"tier": "web", "env": "prod"}, "n1"), ("b", {"tier": "db"}, "n2"),
                               ("c", {"tier": "web"}, "n2")):
        core.create_namespaced_pod(ns, {"metadata": {"name": name, "labels": labels},
                                        "spec": {**POD_SPEC, "nodeName": node}})

    def names(**kw: Any) -> list[str]:
        return sorted(p.metadata.name for p in core.list_namespaced_pod(ns, **kw).items)

    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier in (db,web),!env") == ["b", "c"]
    assert names(label_selector="tier!=web") == ["b"]
    assert names(field_selector="spec.nodeName=n2") == ["b", "c"]
    assert names(field_selector="metadata.name=a") == ["a"]
    assert names(field_selector=f"metadata.namespace={ns},spec.nodeName!=n2") == ["a"]
    all_ns = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    assert [p.metadata.name for p in all_ns.items if p.metadata.namespace == ns] == ["a"]
    expect_error(400, "BadRequest", core.list_namespaced_pod, ns, field_selector="spec.bogus=x")


# ---------------------------------------------------------------------------- patches
def test_merge_and_json_patch(raw_admin: Raw, core: k8s.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "m"}, "data": {"a": "1", "b": "2"}})
    path = f"/api/v1/namespaces/{ns}/configmaps/m"
    code, obj, _ = raw_admin("PATCH", path, {"data": {"a": None, "c": "3"}}, "application/merge-patch+json")
    assert code == 200 and obj["data"] == {"b": "2", "c": "3"}
    code, obj, _ = raw_admin("PATCH", path, [{"op": "replace", "path": "/data/b", "value": "x"},
                                             {"op": "add", "path": "/metadata/labels", "value": {"l": "v"}}],
                             "application/json-patch+json")
    assert code == 200 and obj["data"]["b"] == "x" and obj["metadata"]["labels"] == {"l": "v"}
    code, obj, _ = raw_admin("PATCH", path, [{"op": "test", "path": "/data/b", "value": "nope"}],
                             "application/json-patch+json")
    assert code == 422 and obj["reason"] == "Invalid"
    code, obj, _ = raw_admin("PATCH", path, {"metadata": {"resourceVersion": "1"}, "data": {"z": "z"}},
                             "application/merge-patch+json")
    assert code == 409 and obj["reason"] == "Conflict"


def test_strategic_merge_patch(raw_admin: Raw, apps: k8s.AppsV1Api, core: k8s.CoreV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, {"metadata": {"name": "smp"}, "spec": {
        "selector": {"matchLabels": {"app": "smp"}},
        "template": {"metadata": {"labels": {"app": "smp"}}, "spec": {
            "containers": [{"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
                           {"name": "side", "image": "s:1"}],
            "volumes": [{"name": "v1", "emptyDir": {}}]}}}})
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/smp"
    smp = "application/strategic-merge-patch+json"
    code, obj, _ = raw_admin("PATCH", path, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "a:2", "env": [{"name": "B", "value": "2"}]},
                       {"name": "side", "$patch": "delete"}],
        "volumes": [{"name": "v2", "emptyDir": {}}]}}}}, smp)
    assert code == 200, obj
    spec = obj["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app"]
    assert spec["containers"][0]["image"] == "a:2"
    assert [e["name"] for e in spec["containers"][0]["env"]] == ["A", "B"]
    assert [v["name"] for v in spec["volumes"]] == ["v1", "v2"]
    # Node taints carry no merge strategy: a strategic patch replaces the list whole.
    core.create_node({"metadata": {"name": f"taint-{ns}"}, "spec": {"taints": [
        {"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}]}})
    code, node, _ = raw_admin("PATCH", f"/api/v1/nodes/taint-{ns}", {"spec": {"taints": [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}, smp)
    assert code == 200 and [t["key"] for t in node["spec"]["taints"]] == ["node-role.kubernetes.io/control-plane"]


def test_unknown_fields_warned_or_rejected(raw_admin: Raw, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u", "bogus": 1}, "data": {},
            "extra": True}
    code, obj, headers = raw_admin("POST", path, body)
    assert code == 201 and "extra" not in obj and "bogus" not in obj["metadata"]
    assert sorted(headers.get_all("Warning")) == ['299 - "unknown field \\"extra\\""',
                                                  '299 - "unknown field \\"metadata.bogus\\""']
    code, obj, _ = raw_admin("POST", path + "?fieldValidation=Strict", {**body, "metadata": {"name": "u2"}})
    assert code == 400 and obj["reason"] == "BadRequest" and 'unknown field "extra"' in obj["message"]


def test_role_ref_is_immutable(rbac_api: k8s.RbacAuthorizationV1Api, ns: str) -> None:
    rb = rbac_api.create_namespaced_role_binding(ns, {"metadata": {"name": "rb"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "u"}]})
    rb.role_ref.name = "edit"
    body = expect_error(422, "Invalid", rbac_api.replace_namespaced_role_binding, "rb", ns, rb)
    assert "cannot change roleRef" in body["message"]


def test_finalizers_and_owner_references(core: k8s.CoreV1Api, ns: str) -> None:
    owner = core.create_namespaced_secret(ns, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "dep", "ownerReferences": [{
        "apiVersion": "v1", "kind": "Secret", "name": "owner", "uid": owner.metadata.uid}]}})
    core.delete_namespaced_secret("owner", ns)
    # Dependents are the garbage collector's job, not the API server's.
    assert core.read_namespaced_config_map("dep", ns).metadata.owner_references[0].name == "owner"
    core.create_namespaced_config_map(ns, {"metadata": {"name": "fin", "finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("fin", ns)
    held = core.read_namespaced_config_map("fin", ns)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("fin", ns, {"metadata": {"finalizers": None}})
    expect_error(404, "NotFound", core.read_namespaced_config_map, "fin", ns)


# ---------------------------------------------------------------------------- authn / authz
def test_rbac_denies_then_allows_after_binding(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                               rbac_api: k8s.RbacAuthorizationV1Api, ns: str) -> None:
    alice = k8s.CoreV1Api(standin_pki.client(standin_apiserver.url, "alice", ["dev"]))
    body = expect_error(403, "Forbidden", alice.read_namespaced_config_map, "x", ns)
    assert body["message"] == (f'configmaps "x" is forbidden: User "alice" cannot get resource "configmaps" in '
                               f'API group "" in the namespace "{ns}"')
    assert body["details"] == {"name": "x", "kind": "configmaps"}
    body = expect_error(403, "Forbidden", alice.list_node)
    assert body["message"] == ('nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at '
                               "the cluster scope")
    rbac_api.create_namespaced_role(ns, {"metadata": {"name": "cm-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    rbac_api.create_namespaced_role_binding(ns, {"metadata": {"name": "cm-reader"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "Group", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"}]})
    assert alice.list_namespaced_config_map(ns).items == []
    expect_error(404, "NotFound", alice.read_namespaced_config_map, "x", ns)
    expect_error(403, "Forbidden", alice.create_namespaced_config_map, ns, {"metadata": {"name": "x"}})
    expect_error(403, "Forbidden", alice.list_namespaced_config_map, "kube-system")


def test_resource_names_restrict_access(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                        core: k8s.CoreV1Api, rbac_api: k8s.RbacAuthorizationV1Api,
                                        ns: str) -> None:
    for name in ("one", "two"):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name}})
    rbac_api.create_namespaced_role(ns, {"metadata": {"name": "only-one"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"], "verbs": ["get"]}]})
    rbac_api.create_namespaced_role_binding(ns, {"metadata": {"name": "only-one"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "only-one"},
        "subjects": [{"kind": "User", "name": "bob"}]})
    bob = k8s.CoreV1Api(standin_pki.client(standin_apiserver.url, "bob"))
    assert bob.read_namespaced_config_map("one", ns).metadata.name == "one"
    expect_error(403, "Forbidden", bob.read_namespaced_config_map, "two", ns)


def test_anonymous_cluster_info_needs_kubeadm_role(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                                   core: k8s.CoreV1Api, rbac_api: k8s.RbacAuthorizationV1Api
                                                   ) -> None:
    anon = k8s.CoreV1Api(standin_pki.client(standin_apiserver.url))
    core.create_namespaced_config_map("kube-public", {"metadata": {"name": "cluster-info"},
                                                      "data": {"kubeconfig": "x"}})
    body = expect_error(403, "Forbidden", anon.read_namespaced_config_map, "cluster-info", "kube-public")
    assert 'User "system:anonymous" cannot get resource "configmaps"' in body["message"]
    # What kubefab's bootstrap-token phase creates (reference §5.1).
    rbac_api.create_namespaced_role("kube-public", {"metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo"},
                                                    "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                                               "resourceNames": ["cluster-info"],
                                                               "verbs": ["get"]}]})
    rbac_api.create_namespaced_role_binding("kube-public", {
        "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "kubeadm:bootstrap-signer-clusterinfo"},
        "subjects": [{"kind": "User", "name": "system:anonymous"}]})
    try:
        assert anon.read_namespaced_config_map("cluster-info", "kube-public").data == {"kubeconfig": "x"}
        expect_error(403, "Forbidden", anon.list_namespaced_config_map, "kube-public")
        expect_error(403, "Forbidden", anon.list_namespace)
    finally:
        rbac_api.delete_namespaced_role_binding("kubeadm:bootstrap-signer-clusterinfo", "kube-public")
        rbac_api.delete_namespaced_role("kubeadm:bootstrap-signer-clusterinfo", "kube-public")
        core.delete_namespaced_config_map("cluster-info", "kube-public")


def test_bootstrap_token_authentication(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                        core: k8s.CoreV1Api) -> None:
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    core.create_namespaced_secret("kube-system", token_secret("abcdef", "0123456789abcdef", expiration=future))
    core.create_namespaced_secret("kube-system", token_secret("expire", "0123456789abcdef", expiration=past))
    core.create_namespaced_secret("kube-system", token_secret("noauth", "0123456789abcdef", auth=False))
    url = standin_apiserver.url
    me = whoami(standin_pki.client(url, token="abcdef.0123456789abcdef"))
    assert me["username"] == "system:bootstrap:abcdef"
    assert me["groups"] == ["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token",
                            "system:authenticated"]
    for bad in ("abcdef.0123456789abcdee", "expire.0123456789abcdef", "noauth.0123456789abcdef",
                "zzzzzz.0123456789abcdef", "not-a-token"):
        body = expect_error(401, "Unauthorized", whoami, standin_pki.client(url, token=bad))
        assert body["message"] == "Unauthorized"


def test_client_cert_identity_and_untrusted_cert(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                                 standin_tmp: Path) -> None:
    me = whoami(standin_pki.client(standin_apiserver.url, "system:node:w1", ["system:nodes"]))
    assert me == {"username": "system:node:w1", "groups": ["system:nodes", "system:authenticated"],
                  "uid": None, "extra": None}
    # Anonymous is not bound to system:basic-user, so it cannot even ask who it is.
    body = expect_error(403, "Forbidden", whoami, standin_pki.client(standin_apiserver.url))
    assert 'User "system:anonymous" cannot create resource "selfsubjectreviews"' in body["message"]
    # A certificate from another CA: Python's TLS stack rejects it in the handshake (the real
    # server answers 401 instead); either way the request never runs.
    other_key = cached_key("other-ca")
    other = make_ca("other", other_key)
    leaf = make_leaf(other, other_key, cached_key("client"), "mallory", ["system:masters"], client=True)
    crt, key = standin_tmp / "mallory.crt", standin_tmp / "mallory.key"
    crt.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(cached_key("client").private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                                       serialization.NoEncryption()))
    ctx = ssl.create_default_context(cafile=standin_pki.path("ca.crt"))
    ctx.load_cert_chain(str(crt), str(key))
    conn = http.client.HTTPSConnection("127.0.0.1", standin_apiserver.port, context=ctx, timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        conn.request("GET", "/api/v1/secrets")
        conn.getresponse().read()


def test_node_authorizer_and_node_restriction(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                              core: k8s.CoreV1Api, ns: str) -> None:
    node = k8s.CoreV1Api(standin_pki.client(standin_apiserver.url, "system:node:nodeauth", ["system:nodes"]))
    node.create_node({"metadata": {"name": "nodeauth", "labels": {"kubernetes.io/hostname": "nodeauth"}}})
    node.patch_node("nodeauth", {"metadata": {"labels": {"mine": "yes"}}})
    core.create_node({"metadata": {"name": "other-node"}})
    expect_error(403, "Forbidden", node.patch_node, "other-node", {"metadata": {"labels": {"x": "y"}}})
    expect_error(403, "Forbidden", node.list_namespaced_secret, "kube-system")
    # NodeRestriction: no impostor Nodes, no self-promotion to control plane, mirror pods only.
    body = expect_error(403, "Forbidden", node.create_node, {"metadata": {"name": "impostor"}})
    assert 'node "nodeauth" is not allowed to modify node "impostor"' in body["message"]
    expect_error(403, "Forbidden", node.patch_node, "nodeauth",
                 {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}})
    expect_error(403, "Forbidden", node.create_namespaced_pod, ns,
                 {"metadata": {"name": "p"}, "spec": {**POD_SPEC, "nodeName": "nodeauth"}})
    mirror = node.create_namespaced_pod(ns, {"metadata": {"name": "etcd-nodeauth", "annotations": {
        "kubernetes.io/config.mirror": "hash"}}, "spec": {**POD_SPEC, "nodeName": "nodeauth"}})
    assert mirror.status.phase == "Pending"
    running = node.patch_namespaced_pod_status("etcd-nodeauth", ns, {"status": {"phase": "Running"}})
    assert running.status.phase == "Running"
    core.patch_node("nodeauth", {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}})


def test_csr_flow(standin_pki: LabPki, standin_apiserver: ApiServerProcess, admin: k8s.ApiClient,
                  core: k8s.CoreV1Api, rbac_api: k8s.RbacAuthorizationV1Api) -> None:
    core.create_namespaced_secret("kube-system", token_secret("csrtok", "0123456789abcdef"))
    boot = k8s.CertificatesV1Api(standin_pki.client(standin_apiserver.url, token="csrtok.0123456789abcdef"))
    csr_body = {"metadata": {"generateName": "csr-"}, "spec": {
        "request": make_csr_pem("system:node:w9", ["system:nodes"]),
        "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
        "usages": ["digital signature", "client auth"], "username": "forged"}}
    expect_error(403, "Forbidden", boot.create_certificate_signing_request, csr_body)
    # kubeadm's bootstrap-token phase grants CSR posting (reference §5.1).
    rbac_api.create_cluster_role_binding({"metadata": {"name": "kubeadm:kubelet-bootstrap"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-bootstrapper"},
        "subjects": [{"kind": "Group", "name": "system:bootstrappers:kubeadm:default-node-token"}]})
    csr = boot.create_certificate_signing_request(csr_body)
    name = csr.metadata.name
    assert csr.spec.username == "system:bootstrap:csrtok"
    assert "system:bootstrappers:kubeadm:default-node-token" in csr.spec.groups
    certs = k8s.CertificatesV1Api(admin)
    cond = {"type": "Approved", "status": "True", "reason": "AutoApproved", "message": "ok"}
    ignored = certs.patch_certificate_signing_request(name, {"status": {"conditions": [cond]}})
    assert not ignored.status.conditions
    # An identity that may update /approval but is not allowed to approve for this signer.
    rbac_api.create_cluster_role({"metadata": {"name": "csr-approval-only"}, "rules": [
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"],
         "verbs": ["update", "patch"]}]})
    rbac_api.create_cluster_role_binding({"metadata": {"name": "csr-approval-only"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "csr-approval-only"},
        "subjects": [{"kind": "User", "name": "approver"}]})
    approver = k8s.CertificatesV1Api(standin_pki.client(standin_apiserver.url, "approver"))
    body = expect_error(403, "Forbidden", approver.patch_certificate_signing_request_approval, name,
                        {"status": {"conditions": [cond]}})
    assert "signerName" in body["message"]
    approved = certs.patch_certificate_signing_request_approval(name, {"status": {"conditions": [cond]}})
    assert [c.type for c in approved.status.conditions] == ["Approved"]
    assert approved.status.conditions[0].last_update_time is not None
    pem = base64.b64encode(standin_pki.ca_cert.public_bytes(serialization.Encoding.PEM)).decode()
    no_cert = certs.patch_certificate_signing_request(name, {"status": {"certificate": pem}})
    assert no_cert.status.certificate is None
    signed = certs.patch_certificate_signing_request_status(name, {"status": {"certificate": pem}})
    assert signed.status.certificate == pem and [c.type for c in signed.status.conditions] == ["Approved"]
    seen = boot.read_certificate_signing_request(name)
    assert seen.status.certificate == pem
    # Upstream keeps the spec of a CSR as created: changes are dropped, not refused.
    kept = certs.patch_certificate_signing_request(name, {"spec": {"usages": ["server auth"]}})
    assert kept.spec.usages == ["digital signature", "client auth"]
    assert kept.spec.username == "system:bootstrap:csrtok"


def test_subject_access_review(admin: k8s.ApiClient) -> None:
    authz = k8s.AuthorizationV1Api(admin)

    def sar(user: str, groups: list[str], resource: str, sub: str = "") -> bool:
        out = authz.create_subject_access_review({"spec": {"user": user, "groups": groups, "resourceAttributes": {
            "group": "certificates.k8s.io", "resource": resource, "subresource": sub, "verb": "create"}}})
        return bool(out.status.allowed)

    assert sar("system:node:w1", ["system:nodes"], "certificatesigningrequests")
    assert not sar("someone", ["x"], "certificatesigningrequests", "nodeclient")
    assert sar("root", ["system:masters"], "certificatesigningrequests", "selfnodeclient")


def test_service_account_token_request(admin: k8s.ApiClient, standin_pki: LabPki,
                                       standin_apiserver: ApiServerProcess, core: k8s.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service_account(ns, {"metadata": {"name": "bot"}})
    tr = core.create_namespaced_service_account_token("bot", ns, {"spec": {"expirationSeconds": 3600}})
    token = tr.status.token
    me = whoami(standin_pki.client(standin_apiserver.url, token=token))
    assert me["username"] == f"system:serviceaccount:{ns}:bot"
    assert f"system:serviceaccounts:{ns}" in me["groups"]
    core.delete_namespaced_service_account("bot", ns)
    expect_error(401, "Unauthorized", whoami, standin_pki.client(standin_apiserver.url, token=token))


# ---------------------------------------------------------------------------- kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_real_kubectl(standin_pki: LabPki, standin_apiserver: ApiServerProcess, core: k8s.CoreV1Api,
                      standin_tmp: Path) -> None:
    kc = standin_pki.kubeconfig(standin_apiserver.url, "kubernetes-admin", MASTERS,
                                path=standin_tmp / "admin.conf")
    core.create_node({"metadata": {"name": "kubectl-node"}, "spec": {"taints": [
        {"key": "old", "effect": "NoSchedule"}]}})

    def kubectl(*args: str) -> str:
        r = subprocess.run(["kubectl", "--kubeconfig", kc, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert kubectl("get", "--raw", "/readyz") == "ok"
    assert "kubectl-node" in kubectl("get", "nodes")
    kubectl("label", "node", "kubectl-node", "node-role.kubernetes.io/control-plane=")
    kubectl("taint", "node", "kubectl-node", "node-role.kubernetes.io/control-plane:NoSchedule")
    kubectl("taint", "node", "kubectl-node", "old-")
    node = json.loads(kubectl("get", "node", "kubectl-node", "-o", "json"))
    assert node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == ""
    assert node["spec"]["taints"] == [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
    assert "control-plane" in kubectl("get", "node", "kubectl-node")
    core.create_namespaced_pod("default", {"metadata": {"name": "kubectl-pod"},
                                           "spec": {**POD_SPEC, "nodeName": "kubectl-node"}})
    try:
        row = [ln.split() for ln in kubectl("get", "pods", "-o", "wide").splitlines() if "kubectl-pod" in ln][0]
        assert row[:3] == ["kubectl-pod", "0/1", "Pending"] and row[-1] == "kubectl-node"
    finally:
        core.delete_namespaced_pod("kubectl-pod", "default")


def test_protobuf_bodies_get_415(raw_admin: Raw, ns: str) -> None:
    # kubectl's typed writes (create, certificate approve) send protobuf, which the stand-in
    # does not speak: it must say so clearly rather than misparse.
    code, body, _ = raw_admin("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "pb"}},
                              "application/vnd.kubernetes.protobuf")
    assert code == 415 and body["reason"] == "UnsupportedMediaType"


# ---------------------------------------------------------------------------- shared etcd
def test_two_standins_share_one_etcd(standin_pki: LabPki, standin_etcd: EtcdProcess,
                                     standin_apiserver: ApiServerProcess, standin_tmp: Path,
                                     core: k8s.CoreV1Api, ns: str) -> None:
    second = start_apiserver(standin_pki, [standin_etcd.url], standin_tmp)
    try:
        other = k8s.CoreV1Api(standin_pki.client(second.url, "kubernetes-admin", MASTERS))
        core.create_namespaced_config_map(ns, {"metadata": {"name": "shared"}, "data": {"v": "1"}})
        seen = other.read_namespaced_config_map("shared", ns)
        assert seen.data == {"v": "1"}
        mine = core.read_namespaced_config_map("shared", ns)
        seen.data = {"v": "2"}
        other.replace_namespaced_config_map("shared", ns, seen)
        mine.data = {"v": "3"}
        expect_error(409, "Conflict", core.replace_namespaced_config_map, "shared", ns, mine)
        assert core.read_namespaced_config_map("shared", ns).data == {"v": "2"}
        expect_error(409, "AlreadyExists", other.create_namespaced_config_map, ns, {"metadata": {"name": "shared"}})
        # Bootstrap at the second start was create-if-missing: still one kubernetes Service.
        assert other.read_namespaced_service("kubernetes", "default").spec.cluster_ip == "10.96.0.1"
    finally:
        second.stop()


def test_health_follows_etcd(standin_pki: LabPki, standin_tmp: Path) -> None:
    etcd = start_etcd(standin_pki, standin_tmp / "lonely")
    srv = start_apiserver(standin_pki, [etcd.url], standin_tmp, extra_env={"KUBEFAB_STANDIN_VERSION": "v1.34.2"})
    try:
        raw = Raw(standin_pki, srv.port, "kubernetes-admin", MASTERS)
        assert raw("GET", "/version")[1]["gitVersion"] == "v1.34.2"
        assert raw("GET", "/healthz")[:2] == (200, "ok")
        etcd.stop()
        code, body, _ = raw("GET", "/healthz")
        assert code == 500 and "etcd failed" in body
        assert raw("GET", "/livez")[:2] == (200, "ok")
        # Authorization keeps working from the last policy read (upstream: informer caches),
        # so probes get an answer; reads of objects fail with 503 until etcd is back.
        anon = Raw(standin_pki, srv.port)
        assert anon("GET", "/livez")[:2] == (200, "ok")
        code, body, _ = raw("GET", "/api/v1/namespaces/default/configmaps")
        assert code == 503 and body["reason"] == "ServiceUnavailable"
    finally:
        srv.stop()
        etcd.stop()


# ---------------------------------------------------------------------------- controller identities
def test_controller_service_account_credentials(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                                core: k8s.CoreV1Api, admin: k8s.ApiClient) -> None:
    """The path kube-controller-manager takes with --use-service-account-credentials=true."""
    kcm = k8s.CoreV1Api(standin_pki.client(standin_apiserver.url, "system:kube-controller-manager"))
    try:
        kcm.create_namespaced_service_account("kube-system", {"metadata": {"name": "bootstrap-signer"}})
    except ApiException as exc:
        assert exc.status == 409
    token = kcm.create_namespaced_service_account_token("bootstrap-signer", "kube-system", {"spec": {}}).status.token
    signer = k8s.CoreV1Api(standin_pki.client(standin_apiserver.url, token=token))
    core.create_namespaced_config_map("kube-public", {"metadata": {"name": "cluster-info"},
                                                      "data": {"kubeconfig": "k"}})
    core.create_namespaced_config_map("kube-public", {"metadata": {"name": "other"}})
    try:
        ci = signer.read_namespaced_config_map("cluster-info", "kube-public")
        ci.data["jws-kubeconfig-abcdef"] = "sig"
        assert "jws-kubeconfig-abcdef" in signer.replace_namespaced_config_map("cluster-info", "kube-public",
                                                                               ci).data
        other = signer.read_namespaced_config_map("other", "kube-public")
        expect_error(403, "Forbidden", signer.replace_namespaced_config_map, "other", "kube-public", other)
        signer.list_namespaced_secret("kube-system")  # allowed: an ApiException (403) would fail the test
        expect_error(403, "Forbidden", signer.delete_namespaced_secret, "anything", "kube-system")
    finally:
        for name in ("cluster-info", "other"):
            core.delete_namespaced_config_map(name, "kube-public")


def test_create_with_resource_version_is_refused(raw_admin: Raw, ns: str) -> None:
    code, body, _ = raw_admin("POST", f"/api/v1/namespaces/{ns}/configmaps",
                              {"metadata": {"name": "rv", "resourceVersion": "12"}})
    assert code == 500 and body["message"] == "resourceVersion should not be set on objects to be created"


def test_dry_run_stores_nothing(raw_admin: Raw, core: k8s.CoreV1Api, ns: str) -> None:
    code, body, _ = raw_admin("POST", f"/api/v1/namespaces/{ns}/configmaps?dryRun=All", {"metadata": {"name": "dry"}})
    assert code == 201 and body["metadata"]["uid"]
    expect_error(404, "NotFound", core.read_namespaced_config_map, "dry", ns)


def test_leases_and_service_accounts(admin: k8s.ApiClient, core: k8s.CoreV1Api, ns: str) -> None:
    coord = k8s.CoordinationV1Api(admin)
    lease = coord.create_namespaced_lease(ns, {"metadata": {"name": "holder"}, "spec": {
        "holderIdentity": "a", "leaseDurationSeconds": 15}})
    lease.spec.holder_identity = "b"
    assert coord.replace_namespaced_lease("holder", ns, lease).spec.holder_identity == "b"
    sa = core.create_namespaced_service_account(ns, {"metadata": {"name": "sa"}})
    assert core.delete_namespaced_service_account("sa", ns).metadata.uid == sa.metadata.uid


def test_namespace_delete_removes_contents(core: k8s.CoreV1Api, raw_admin: Raw) -> None:
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    ns = core.read_namespace("doomed")
    assert ns.status.phase == "Active" and ns.metadata.labels == {"kubernetes.io/metadata.name": "doomed"}
    assert ns.spec.finalizers == ["kubernetes"]
    # Upstream answers with the Namespace itself (phase Terminating), not a Status.
    code, body, _ = raw_admin("DELETE", "/api/v1/namespaces/doomed")
    assert code == 200 and body["kind"] == "Namespace" and body["status"]["phase"] == "Terminating"
    expect_error(404, "NotFound", core.read_namespace, "doomed")
    expect_error(404, "NotFound", core.create_namespaced_config_map, "doomed", {"metadata": {"name": "c"}})


@pytest.mark.parametrize("path,kind,creates", [
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/r", "Role", True),
    ("/api/v1/namespaces/{ns}/configmaps/c", "ConfigMap", False),
])
def test_put_creates_only_where_upstream_allows(raw_admin: Raw, ns: str, path: str, kind: str,
                                                creates: bool) -> None:
    body: dict[str, Any] = {"metadata": {"name": path.rsplit("/", 1)[1]}}
    if kind == "Role":
        body["rules"] = []
    code, out, _ = raw_admin("PUT", path.format(ns=ns), body)
    assert code == (201 if creates else 404), out
    stale = {**body, "metadata": {**body["metadata"], "name": "other", "resourceVersion": "5"}}
    code, out, _ = raw_admin("PUT", path.format(ns=ns).rsplit("/", 1)[0] + "/other", stale)
    assert code == (409 if creates else 404), out


def test_etcd_endpoint_failover(standin_pki: LabPki, standin_etcd: EtcdProcess, standin_tmp: Path) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    srv = start_apiserver(standin_pki, [dead, standin_etcd.url], standin_tmp)
    try:
        core = k8s.CoreV1Api(standin_pki.client(srv.url, "kubernetes-admin", MASTERS))
        assert "kube-system" in {n.metadata.name for n in core.list_namespace().items}
    finally:
        srv.stop()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_kubectl_apply_validates_on_the_server(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                               core: k8s.CoreV1Api, standin_tmp: Path, ns: str) -> None:
    # /openapi/v3 advertises fieldValidation, so kubectl leaves validation to the server.
    kc = standin_pki.kubeconfig(standin_apiserver.url, "kubernetes-admin", MASTERS,
                                path=standin_tmp / "admin-apply.conf")
    good, bad = standin_tmp / f"good-{ns}.yaml", standin_tmp / f"bad-{ns}.yaml"
    good.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: {ns}\n"
                    "data:\n  k: v\n")
    bad.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: {ns}\nbogus: 1\n")

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", "--kubeconfig", kc, *args], capture_output=True, text=True, timeout=30)

    first, second = kubectl("apply", "-f", str(good)), kubectl("apply", "-f", str(good))
    assert first.returncode == 0 and "created" in first.stdout, first.stderr
    assert second.returncode == 0 and "unchanged" in second.stdout, second.stderr
    assert core.read_namespaced_config_map("applied", ns).data == {"k": "v"}
    refused = kubectl("apply", "-f", str(bad))
    assert refused.returncode != 0
    assert 'strict decoding error: unknown field "bogus"' in refused.stderr


def test_watch_streams_changes_from_etcd(core: k8s.CoreV1Api, ns: str) -> None:
    from kubernetes import watch

    core.create_namespaced_config_map(ns, {"metadata": {"name": "before", "labels": {"w": "yes"}}})
    listed = core.list_namespaced_config_map(ns)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "w1", "labels": {"w": "yes"}}})
    core.patch_namespaced_config_map("w1", ns, {"data": {"k": "v"}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "other"}})
    core.delete_namespaced_config_map("w1", ns)
    # Resuming from the list's resourceVersion replays exactly what happened since.
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, ns, resource_version=listed.metadata.resource_version,
        label_selector="w=yes", timeout_seconds=1)]
    assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    # Without a resourceVersion a watch starts with the current state.
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, ns, timeout_seconds=1)]
    assert sorted(events) == [("ADDED", "before"), ("ADDED", "other")]


def test_watch_needs_the_watch_verb(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                    rbac_api: k8s.RbacAuthorizationV1Api, ns: str) -> None:
    rbac_api.create_namespaced_role(ns, {"metadata": {"name": "list-only"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
    rbac_api.create_namespaced_role_binding(ns, {"metadata": {"name": "list-only"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "list-only"},
        "subjects": [{"kind": "User", "name": "lister"}]})
    raw = Raw(standin_pki, standin_apiserver.port, "lister")
    assert raw("GET", f"/api/v1/namespaces/{ns}/configmaps")[0] == 200
    code, body, _ = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=true&timeoutSeconds=1")
    assert code == 403 and 'cannot watch resource "configmaps"' in body["message"]
