"""Pure pieces of the kube-apiserver stand-in: patches, selectors, pruning, flags, RBAC rules.

No etcd, no server: these pin the semantics the HTTPS conformance suite relies on, with
cases that are awkward to reach through a client (patch directives, selector grammar).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.lab.standins import apiserver_auth as auth
from tests.lab.standins import patch, rbac, schema
from tests.lab.standins.apiserver import parse_flags
from tests.lab.standins.apiserver_registry import ApiError, labels_match, parse_label_selector
from tests.lab.standins.apiserver_resources import BY_PATH, name_problem

POD = schema.kind_schema("io.k8s.api.core.v1.Pod")
NODE = schema.kind_schema("io.k8s.api.core.v1.Node")


@pytest.mark.parametrize("target,p,expected", [
    ({"a": 1, "b": {"c": 2}}, {"b": {"c": None, "d": 3}}, {"a": 1, "b": {"d": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1}, {"a": None}, {}),
])
def test_merge_patch(target: Any, p: Any, expected: Any) -> None:
    assert patch.merge_patch(target, p) == expected


@pytest.mark.parametrize("ops,expected", [
    ([{"op": "add", "path": "/a/-", "value": 9}], {"a": [1, 2, 9], "b": {"c": 1}}),
    ([{"op": "remove", "path": "/a/0"}], {"a": [2], "b": {"c": 1}}),
    ([{"op": "replace", "path": "/b/c", "value": 5}], {"a": [1, 2], "b": {"c": 5}}),
    ([{"op": "move", "from": "/b/c", "path": "/d"}], {"a": [1, 2], "b": {}, "d": 1}),
    ([{"op": "copy", "from": "/a", "path": "/e"}], {"a": [1, 2], "b": {"c": 1}, "e": [1, 2]}),
    ([{"op": "add", "path": "/b/x~1y", "value": 1}], {"a": [1, 2], "b": {"c": 1, "x/y": 1}}),
])
def test_json_patch(ops: list[dict[str, Any]], expected: Any) -> None:
    assert patch.json_patch({"a": [1, 2], "b": {"c": 1}}, ops) == expected


@pytest.mark.parametrize("ops,code", [
    ([{"op": "remove", "path": "/missing"}], 400),
    ([{"op": "replace", "path": "/a/7", "value": 1}], 400),
    ([{"op": "test", "path": "/b/c", "value": 2}], 422),
    ([{"op": "frobnicate", "path": "/a"}], 400),
])
def test_json_patch_errors(ops: list[dict[str, Any]], code: int) -> None:
    with pytest.raises(patch.PatchError) as info:
        patch.json_patch({"a": [1, 2], "b": {"c": 1}}, ops)
    assert info.value.code == code


def test_strategic_merge_containers_by_name_and_directives() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                                   {"name": "b", "image": "b:1"}],
                    "tolerations": [{"key": "t1"}], "volumes": [{"name": "v", "emptyDir": {}}]},
           "metadata": {"finalizers": ["f1"]}}
    out = patch.strategic_merge(pod, {
        "spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "$patch": "delete"}]},
                                {"name": "c", "image": "c:1"}, {"name": "b", "$patch": "delete"}],
                 "tolerations": [{"key": "t2"}],
                 "volumes": [{"$patch": "replace"}, {"name": "w", "emptyDir": {}}]},
        "metadata": {"finalizers": ["f2"], "$deleteFromPrimitiveList/finalizers": ["f1"]}}, POD)
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "c"]
    assert out["spec"]["containers"][0] == {"name": "a", "image": "a:1", "env": [{"name": "Y", "value": "2"}]}
    assert out["spec"]["tolerations"] == [{"key": "t2"}]  # atomic list: replaced
    assert out["spec"]["volumes"] == [{"name": "w", "emptyDir": {}}]
    assert out["metadata"]["finalizers"] == ["f2"]


def test_strategic_merge_node_taints_replaced_whole() -> None:
    node = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}]}}
    out = patch.strategic_merge(node, {"spec": {"taints": [{"key": "c", "effect": "NoSchedule"}]}}, NODE)
    assert out["spec"]["taints"] == [{"key": "c", "effect": "NoSchedule"}]


def test_strategic_merge_missing_merge_key_is_an_error() -> None:
    with pytest.raises(patch.PatchError):
        patch.strategic_merge({"spec": {"containers": []}}, {"spec": {"containers": [{"image": "x"}]}}, POD)


def test_prune_reports_paths() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"any": "ok"}, "junk": 1},
           "spec": {"containers": [{"name": "c", "image": "i", "bogus": True}]}, "top": 1}
    assert sorted(schema.prune(obj, POD)) == ["metadata.junk", "spec.containers[0].bogus", "top"]
    assert obj == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"any": "ok"}},
                   "spec": {"containers": [{"name": "c", "image": "i"}]}}


@pytest.mark.parametrize("selector,labels,matches", [
    ("a=b", {"a": "b"}, True),
    ("a==b,c", {"a": "b"}, False),
    ("a!=b", {}, True),
    ("a in (x, y)", {"a": "y"}, True),
    ("a notin (x)", {"a": "x"}, False),
    ("!a", {"b": "1"}, True),
    ("a,b=2", {"a": "", "b": "2"}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert labels_match(parse_label_selector(selector), labels) is matches


def test_bad_label_selector_is_400() -> None:
    with pytest.raises(ApiError) as info:
        parse_label_selector("a in x")
    assert info.value.code == 400


@pytest.mark.parametrize("rule,name,ok", [
    ("subdomain", "kube-proxy", True), ("subdomain", "a.b", True), ("subdomain", "Bad_Name", False),
    ("label", "a.b", False), ("dns1035", "9abc", False), ("dns1035", "kube-dns", True),
    ("path", "kubeadm:get-nodes", True), ("path", "a/b", False), ("path", "..", False),
])
def test_name_rules(rule: str, name: str, ok: bool) -> None:
    assert (name_problem(rule, name) is None) is ok


def test_flags_parsed_and_others_kept_for_logging() -> None:
    cfg = parse_flags(["--advertise-address=10.0.0.1", "--secure-port=6443", "--authorization-mode=Node,RBAC",
                       "--etcd-servers=https://127.0.0.1:2379,https://10.0.0.2:2379",
                       "--enable-bootstrap-token-auth=true", "--allow-privileged=true",
                       "--service-cluster-ip-range", "10.96.0.0/12"])
    assert cfg.advertise_address == "10.0.0.1" and cfg.secure_port == 6443
    assert cfg.authorization_modes == ["Node", "RBAC"] and len(cfg.etcd_servers) == 2
    assert cfg.enable_bootstrap_token_auth and cfg.service_cluster_ip_range == "10.96.0.0/12"
    assert cfg.ignored == ["--allow-privileged=true"]


def _attrs(user: rbac.User, verb: str, resource: str, **kw: Any) -> rbac.Attributes:
    return rbac.Attributes(user, verb, True, resource=resource, **kw)


def test_rbac_rule_matching_subresources_and_names() -> None:
    role = {"metadata": {"name": "r"}, "rules": [
        {"apiGroups": [""], "resources": ["*/status"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"], "verbs": ["get"]}]}
    binding = {"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "r"},
               "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "ns"}]}
    objects = {"clusterroles": [role], "clusterrolebindings": [binding], "rolebindings": [], "roles": []}
    lister = lambda plural, ns: objects[plural]  # noqa: E731
    bot = rbac.User("system:serviceaccount:ns:bot", ("system:authenticated",))
    assert rbac.rbac_allows(_attrs(bot, "update", "pods", subresource="status", namespace="x"), lister)
    assert not rbac.rbac_allows(_attrs(bot, "update", "pods", namespace="x"), lister)
    assert rbac.rbac_allows(_attrs(bot, "get", "configmaps", name="one", namespace="x"), lister)
    assert not rbac.rbac_allows(_attrs(bot, "get", "configmaps", name="two", namespace="x"), lister)
    other = rbac.User("system:serviceaccount:other:bot")
    assert not rbac.rbac_allows(_attrs(other, "get", "configmaps", name="one", namespace="x"), lister)


def test_forbidden_message_shapes() -> None:
    u = rbac.User("alice")
    assert rbac.forbidden_message(_attrs(u, "get", "configmaps", name="c", namespace="n")) == (
        'configmaps "c" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the '
        'namespace "n"')
    assert rbac.forbidden_message(rbac.Attributes(u, "patch", True, group="", resource="nodes",
                                                  subresource="status", name="n1")) == (
        'nodes "n1" is forbidden: User "alice" cannot patch resource "nodes/status" in API group "" at the '
        "cluster scope")


def _secret(**data: str) -> dict[str, Any]:
    import base64
    return {"type": "bootstrap.kubernetes.io/token",
            "data": {k.replace("_", "-"): base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.mark.parametrize("data,error", [
    ({"token_id": "abcdef", "token_secret": "0123456789abcdef", "usage_bootstrap_authentication": "true"}, None),
    ({"token_id": "abcdef", "token_secret": "0123456789abcdef"}, "not usable"),
    ({"token_id": "abcdef", "token_secret": "0123456789abcdef", "usage_bootstrap_authentication": "true",
      "expiration": "2020-01-01T00:00:00Z"}, "expired"),
    ({"token_id": "abcdef", "token_secret": "ffffffffffffffff", "usage_bootstrap_authentication": "true"},
     "invalid"),
    ({"token_id": "abcdef", "token_secret": "0123456789abcdef", "usage_bootstrap_authentication": "true",
      "auth_extra_groups": "system:masters"}, "auth-extra-groups"),
])
def test_bootstrap_token_rules(data: dict[str, str], error: str | None) -> None:
    get = lambda ns, name: _secret(**data) if (ns, name) == ("kube-system", "bootstrap-token-abcdef") else None  # noqa: E731
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    if error is None:
        user = auth.user_from_bootstrap_token("abcdef.0123456789abcdef", get, now)
        assert user is not None and user.name == "system:bootstrap:abcdef"
    else:
        with pytest.raises(auth.Unauthorized, match=error):
            auth.user_from_bootstrap_token("abcdef.0123456789abcdef", get, now)
    assert auth.user_from_bootstrap_token("not-a-bootstrap-token", get, now) is None


def test_resource_table_keys_match_upstream_etcd_layout() -> None:
    assert BY_PATH[("", "v1", "nodes")].etcd_segment == "minions"
    assert BY_PATH[("", "v1", "services")].etcd_segment == "services/specs"
    assert BY_PATH[("apps", "v1", "deployments")].etcd_segment == "deployments"


@pytest.mark.parametrize("euid,ci,outcome", [
    (0, "true", None), (1000, "", pytest.skip.Exception), (1000, "true", pytest.fail.Exception),
])
def test_root_gating_never_skips_silently(monkeypatch: pytest.MonkeyPatch, euid: int, ci: str,
                                          outcome: type[BaseException] | None) -> None:
    from tests.integration import standin_fixtures

    monkeypatch.setattr(standin_fixtures.os, "geteuid", lambda: euid)
    monkeypatch.setenv("CI", ci)
    if outcome is None:
        standin_fixtures.require_root()
    else:
        with pytest.raises(outcome, match="needs root"):
            standin_fixtures.require_root()
