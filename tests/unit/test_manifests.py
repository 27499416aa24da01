"""Static Pods, kubelet files and addon objects against kubeadm's formats (reference §3-§5).

Every rendered Pod and addon object is validated with kubernetes-validate (strict) for each
supported minor; golden files under tests/golden/manifests/<minor>/ pin the bytes of a fixed
sample cluster. Regenerate them after an intended change with::

    KUBEFAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_manifests.py -q
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tasks.core.manifests.addons import dump_objects, render_coredns_objects, render_kube_proxy_objects
from tasks.core.manifests.common import component_config_hash, Flag, merge_args, service_ip
from tasks.core.manifests.kubelet import (
    render_instance_config, render_kubeadm_flags_env, render_kubelet_config,
    render_kubelet_dropin, resolver_mutation, SYSTEMD_RESOLVED_RESOLV_CONF, uses_instance_config,
)
from tasks.core.manifests.staticpods import render_static_pods
from tasks.core.errors import ConfigError, KubefabError
from tasks.core.render import dump_yaml
from tasks.core.spec import (
    APIServer,
    Arg,
    ClusterConfiguration,
    ControlPlaneComponent,
    DNS,
    EnvVar,
    ExternalEtcd,
    HostPathMount,
    LocalEtcd,
    Networking,
    NodeRegistration,
    Taint,
    Timeouts,
)
from tasks.core.versions import SUPPORTED_MINORS, for_version, keeps_user_arg_order

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "manifests"
UPDATE_GOLDEN = os.environ.get("KUBEFAB_UPDATE_GOLDEN") == "1"
MINORS = SUPPORTED_MINORS
CP_URL = "https://cp.example.test:6443"


def version(minor: int) -> str:
    return for_version(f"v1.{minor}").default_patch


def cluster(minor: int, **changes: Any) -> ClusterConfiguration:
    return replace(ClusterConfiguration(kubernetes_version=version(minor)), **changes)


def sample_cluster(minor: int) -> ClusterConfiguration:
    """The golden sample: HA endpoint, pod network, a few user settings on every component."""
    return cluster(
        minor,
        control_plane_endpoint="cp.example.test:6443",
        networking=Networking(pod_subnet="10.244.0.0/16"),
        api_server=APIServer(extra_args=(Arg("audit-log-maxage", "30"), Arg("audit-log-path", "-"))),
        controller_manager=ControlPlaneComponent(extra_args=(Arg("node-cidr-mask-size", "24"),)),
        scheduler=ControlPlaneComponent(extra_envs=(EnvVar("GOMAXPROCS", "2"),)),
    )


SAMPLE_NODE = dict(node_name="m1", advertise_address="10.0.0.11",
                   host_ca_dirs=("/etc/ca-certificates", "/usr/share/ca-certificates"),
                   proxy_env={"NO_PROXY": "10.0.0.0/8", "HTTPS_PROXY": "http://proxy.test:3128"})


def pods_of(data: dict[str, bytes]) -> dict[str, dict]:
    return {name: yaml.safe_load(text) for name, text in data.items()}


def command(pod: dict) -> list[str]:
    return pod["spec"]["containers"][0]["command"]


def flags(pod: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for arg in command(pod)[1:]:
        name, _, value = arg[2:].partition("=")
        out.setdefault(name, []).append(value)
    return out


def validate(obj: dict, minor: int) -> None:
    """Strict schema validation; failures show only the validator's message."""
    try:
        kubernetes_validate.validate(obj, f"1.{minor}.0", strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} invalid for 1.{minor}: {exc.message}")


# --- schema validation --------------------------------------------------------------------------

SCENARIOS = {
    "default": (lambda minor: cluster(minor), dict(node_name="m1", advertise_address="10.0.0.11")),
    "sample": (sample_cluster, SAMPLE_NODE),
    "ipv6": (lambda minor: cluster(minor, networking=Networking(service_subnet="fd00:10::/108",
                                                                pod_subnet="fd00:20::/64")),
             dict(node_name="m1", advertise_address="fd00::11")),
    "external-etcd": (lambda minor: cluster(minor, etcd_local=None, etcd_external=ExternalEtcd(
        endpoints=("https://10.0.0.5:2379", "https://10.0.0.6:2379"), ca_file="/etc/etcd/pki/ca.crt",
        cert_file="/etc/etcd/pki/client.crt", key_file="/etc/etcd/pki/client.key")),
        dict(node_name="m1", advertise_address="10.0.0.11")),
    "join": (sample_cluster, dict(SAMPLE_NODE, node_name="m2", advertise_address="10.0.0.12", join=True,
                                  initial_cluster=[("m1", "https://10.0.0.11:2380"),
                                                   ("m2", "https://10.0.0.12:2380")])),
}


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_static_pods_validate(minor, scenario):
    make, node = SCENARIOS[scenario]
    data = render_static_pods(make(minor), **node)
    for name, pod in pods_of(data).items():
        validate(pod, minor)
        assert pod["metadata"]["name"] == name
        # kubeadm marshals the Pod struct: sorted keys at every level, go-yaml layout
        assert dump_yaml(pod) == data[name].decode()


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("scenario", ["default", "sample", "ipv6"])
def test_addon_objects_validate(minor, scenario):
    make, node = SCENARIOS[scenario]
    c = make(minor)
    objs = render_coredns_objects(c) + render_kube_proxy_objects(
        c, {}, control_plane_url=CP_URL, advertise_address=node["advertise_address"],
        proxy_env={"HTTP_PROXY": "http://proxy.test:3128"})
    assert [o["kind"] for o in objs] == [
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service",
        "ServiceAccount", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap", "DaemonSet"]
    for obj in objs:
        validate(obj, minor)


# --- golden files -------------------------------------------------------------------------------

def golden_outputs(minor: int) -> dict[str, bytes]:
    c = sample_cluster(minor)
    node = NodeRegistration(name="m1", kubelet_extra_args=(Arg("node-ip", "10.0.0.11"),))
    worker = NodeRegistration(name="w1", taints=(Taint("dedicated", "NoSchedule", "infra"),))
    out = {f"{name}.yaml": text for name, text in render_static_pods(c, **SAMPLE_NODE).items()}
    out["kubelet-config.yaml"] = render_kubelet_config(c, {"maxPods": 200})
    out["kubeadm-flags.env"] = render_kubeadm_flags_env(c, node, host_hostname="m1")
    out["kubeadm-flags-worker.env"] = render_kubeadm_flags_env(c, worker, host_hostname="node-7",
                                                                 worker_join=True)
    if for_version(c.kubernetes_version).instance_config:
        out["instance-config.yaml"] = render_instance_config(node.cri_socket)
    out["10-kubeadm.conf"] = render_kubelet_dropin()
    out["coredns.yaml"] = dump_objects(render_coredns_objects(c))
    out["kube-proxy.yaml"] = dump_objects(render_kube_proxy_objects(
        c, {"mode": "iptables"}, control_plane_url=CP_URL, advertise_address="10.0.0.11"))
    return out


@pytest.mark.parametrize("minor", MINORS)
def test_golden(minor):
    outputs = golden_outputs(minor)
    directory = GOLDEN / f"1.{minor}"
    if UPDATE_GOLDEN:
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            if old.name not in outputs:
                old.unlink()
        for name, data in outputs.items():
            (directory / name).write_bytes(data)
    assert directory.is_dir(), f"no golden files for 1.{minor}: run with KUBEFAB_UPDATE_GOLDEN=1"
    assert sorted(p.name for p in directory.iterdir()) == sorted(outputs)
    for name, data in outputs.items():
        assert data == (directory / name).read_bytes(), \
            f"{directory / name} differs; if intended, regenerate with KUBEFAB_UPDATE_GOLDEN=1"


# --- byte stability -----------------------------------------------------------------------------

@pytest.mark.parametrize("minor", MINORS)
def test_render_twice_same_bytes(minor):
    assert golden_outputs(minor) == golden_outputs(minor)
    # the order the host reports its proxy variables or CA dirs in must not matter
    a = render_static_pods(sample_cluster(minor), **SAMPLE_NODE)
    shuffled = dict(SAMPLE_NODE, proxy_env=dict(reversed(list(SAMPLE_NODE["proxy_env"].items()))),
                    host_ca_dirs=tuple(reversed(SAMPLE_NODE["host_ca_dirs"])))
    assert render_static_pods(sample_cluster(minor), **shuffled) == a


# --- flags: merge and sort rules ----------------------------------------------------------------

def test_merge_args_override_drops_all_defaults_of_that_name_and_sorts():
    defaults = [Flag("b", "1"), Flag("a", "1"), Flag("b", "2")]
    user = [Arg("c", "z"), Arg("b", "9"), Arg("b", "0")]
    # before the fix (e.g. 1.33.7): everything sorted by name, then value
    assert merge_args(defaults, user, keep_user_order=False) == ["--a=1", "--b=0", "--b=9", "--c=z"]
    # 1.36 and the back-ports: the remaining defaults sorted, then the user's entries as given
    # (what kubeadm 1.35.4 and 1.36.3 write; tests/judge compares with them)
    assert merge_args(defaults, user, keep_user_order=True) == ["--a=1", "--c=z", "--b=9", "--b=0"]


@pytest.mark.parametrize("minor", MINORS)
def test_apiserver_extra_args_override_and_order(minor):
    c = cluster(minor, api_server=APIServer(extra_args=(
        Arg("secure-port", "7443"), Arg("audit-log-path", "-"), Arg("authorization-mode", "RBAC,Bogus,Node"))))
    pod = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["kube-apiserver"]
    f = flags(pod)
    assert f["secure-port"] == ["7443"]
    assert f["authorization-mode"] == ["RBAC,Bogus,Node"]  # the user's flag replaces the default
    args = command(pod)[1:]
    if keeps_user_arg_order(c.kubernetes_version):  # the remaining defaults sorted, then the user's as given
        assert args[-3:] == ["--secure-port=7443", "--audit-log-path=-", "--authorization-mode=RBAC,Bogus,Node"]
        assert args[:-3] == sorted(args[:-3])
    else:
        assert args == sorted(args)


def test_authorization_config_removes_authorization_mode():
    c = cluster(36, api_server=APIServer(extra_args=(Arg("authorization-config", "/etc/kubernetes/authz.yaml"),)))
    f = flags(pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["kube-apiserver"])
    assert "authorization-mode" not in f
    assert f["authorization-config"] == ["/etc/kubernetes/authz.yaml"]


@pytest.mark.parametrize("pod_subnet", ["", "10.244.0.0/16"])
def test_controller_manager_flags_depend_on_pod_subnet(pod_subnet):
    c = cluster(35, networking=Networking(pod_subnet=pod_subnet))
    f = flags(pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))
              ["kube-controller-manager"])
    ipam = {"allocate-node-cidrs", "cluster-cidr", "service-cluster-ip-range"}
    if pod_subnet:
        assert f["allocate-node-cidrs"] == ["true"]
        assert f["cluster-cidr"] == [pod_subnet]
        assert f["service-cluster-ip-range"] == ["10.96.0.0/12"]
    else:
        assert not ipam & set(f)
    assert f["controllers"] == ["*,bootstrapsigner,tokencleaner"]
    assert f["cluster-name"] == ["kubernetes"]


# --- volumes ------------------------------------------------------------------------------------

def volumes(pod: dict) -> dict[str, dict]:
    return {v["name"]: v for v in pod["spec"]["volumes"]}


def mounts(pod: dict) -> dict[str, dict]:
    return {v["name"]: v for v in pod["spec"]["containers"][0]["volumeMounts"]}


def test_optional_ca_dirs_only_when_present_on_host():
    c = cluster(34)
    pods = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11",
                                        host_ca_dirs=("/etc/pki/ca-trust", "/etc/pki/tls/certs", "/opt/other")))
    for name in ("kube-apiserver", "kube-controller-manager"):
        assert set(volumes(pods[name])) >= {"k8s-certs", "ca-certs", "etc-pki-ca-trust", "etc-pki-tls-certs"}
        assert "usr-share-ca-certificates" not in volumes(pods[name])
        assert "opt-other" not in volumes(pods[name])
    assert set(volumes(pods["kube-scheduler"])) == {"kubeconfig"}


def test_extra_volumes_replace_by_name_and_sort():
    c = cluster(36, api_server=APIServer(extra_volumes=(
        HostPathMount("k8s-certs", "/srv/pki", "/etc/kubernetes/pki", read_only=True, path_type="Directory"),
        HostPathMount("audit", "/var/log/kubernetes", "/var/log/audit", path_type="DirectoryOrCreate"),
    )))
    pod = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["kube-apiserver"]
    vols = volumes(pod)
    assert vols["k8s-certs"]["hostPath"] == {"path": "/srv/pki", "type": "Directory"}
    assert mounts(pod)["k8s-certs"] == {"mountPath": "/etc/kubernetes/pki", "name": "k8s-certs", "readOnly": True}
    assert vols["audit"]["hostPath"]["path"] == "/var/log/kubernetes"
    assert mounts(pod)["audit"] == {"mountPath": "/var/log/audit", "name": "audit"}  # read-write
    names = [v["name"] for v in pod["spec"]["volumes"]]
    assert names == sorted(names) and names.count("k8s-certs") == 1
    assert [v["name"] for v in pod["spec"]["containers"][0]["volumeMounts"]] == names


def test_controller_manager_flexvolume_dir_follows_extra_arg():
    c = cluster(33, controller_manager=ControlPlaneComponent(
        extra_args=(Arg("flex-volume-plugin-dir", "/opt/flex"),)))
    pod = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["kube-controller-manager"]
    assert volumes(pod)["flexvolume-dir"]["hostPath"]["path"] == "/opt/flex"
    assert "readOnly" not in mounts(pod)["flexvolume-dir"]
    assert volumes(pod)["kubeconfig"]["hostPath"] == {"path": "/etc/kubernetes/controller-manager.conf",
                                                      "type": "FileOrCreate"}


def test_controller_manager_has_no_flexvolume_dir_from_136():
    c = cluster(36, controller_manager=ControlPlaneComponent(
        extra_args=(Arg("flex-volume-plugin-dir", "/opt/flex"),)))
    pod = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["kube-controller-manager"]
    assert "flexvolume-dir" not in volumes(pod) and "flexvolume-dir" not in mounts(pod)


# --- IPv6 ---------------------------------------------------------------------------------------

def test_ipv6_addresses_are_bracketed():
    make, node = SCENARIOS["ipv6"]
    pods = pods_of(render_static_pods(make(36), **node))
    api = pods["kube-apiserver"]
    assert api["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "[fd00::11]:6443"}
    assert flags(api)["advertise-address"] == ["fd00::11"]
    assert flags(api)["etcd-servers"] == ["https://[::1]:2379"]
    assert api["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"] == "fd00::11"
    etcd = pods["etcd"]
    assert etcd["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://[fd00::11]:2379"}
    f = flags(etcd)
    assert f["listen-client-urls"] == ["https://[::1]:2379,https://[fd00::11]:2379"]
    assert f["listen-metrics-urls"] == ["http://[::1]:2381"]
    assert f["initial-cluster"] == ["m1=https://[fd00::11]:2380"]
    assert etcd["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"] == "::1"
    proxy_cm = [o for o in render_kube_proxy_objects(make(36), {}, control_plane_url="https://[fd00::11]:6443",
                                                       advertise_address="fd00::11") if o["kind"] == "ConfigMap"][0]
    assert yaml.safe_load(proxy_cm["data"]["config.conf"])["bindAddress"] == "::"
    assert service_ip("fd00:10::/108", 10) == "fd00:10::a"


# --- etcd -----------------------------------------------------------------------------------------

def test_external_etcd():
    make, node = SCENARIOS["external-etcd"]
    pods = pods_of(render_static_pods(make(35), **node))
    assert set(pods) == {"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    f = flags(pods["kube-apiserver"])
    assert f["etcd-servers"] == ["https://10.0.0.5:2379,https://10.0.0.6:2379"]
    assert f["etcd-cafile"] == ["/etc/etcd/pki/ca.crt"]
    assert f["etcd-certfile"] == ["/etc/etcd/pki/client.crt"]
    assert f["etcd-keyfile"] == ["/etc/etcd/pki/client.key"]
    vols = volumes(pods["kube-apiserver"])
    assert vols["etcd-certs-0"]["hostPath"] == {"path": "/etc/etcd/pki", "type": "DirectoryOrCreate"}
    assert "etcd-certs-1" not in vols


def test_external_etcd_without_tls_files_and_covered_dirs():
    c = cluster(33, etcd_local=None, etcd_external=ExternalEtcd(
        endpoints=("http://10.0.0.5:2379",), ca_file="/etc/kubernetes/pki/etcd-ext/ca.crt"))
    pod = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["kube-apiserver"]
    f = flags(pod)
    assert "etcd-certfile" not in f and "etcd-keyfile" not in f
    assert f["etcd-cafile"] == ["/etc/kubernetes/pki/etcd-ext/ca.crt"]
    # already visible through the k8s-certs mount
    assert not [n for n in volumes(pod) if n.startswith("etcd-certs")]


def test_etcd_join_uses_member_list():
    make, node = SCENARIOS["join"]
    f = flags(pods_of(render_static_pods(make(34), **node))["etcd"])
    assert f["initial-cluster"] == ["m1=https://10.0.0.11:2380,m2=https://10.0.0.12:2380"]
    assert f["initial-cluster-state"] == ["existing"]
    assert f["name"] == ["m2"]
    init = flags(pods_of(render_static_pods(make(34), **SAMPLE_NODE))["etcd"])
    assert "initial-cluster-state" not in init


def test_etcd_join_without_member_list_is_an_error():
    with pytest.raises(KubefabError, match="etcd member list"):
        render_static_pods(cluster(36), node_name="m2", advertise_address="10.0.0.12", join=True)


def test_etcd_metrics_url_moves_the_probe():
    c = cluster(36, etcd_local=LocalEtcd(extra_args=(Arg("listen-metrics-urls", "https://10.0.0.11:2382"),)))
    etcd = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["etcd"]
    container = etcd["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"host": "10.0.0.11", "path": "/livez",
                                                     "port": "probe-port", "scheme": "HTTPS"}
    assert container["ports"] == [{"containerPort": 2382, "name": "probe-port", "protocol": "TCP"}]
    assert flags(etcd)["listen-metrics-urls"] == ["https://10.0.0.11:2382"]


def test_etcd_image_overrides():
    c = cluster(34, image_repository="mirror.test/k8s",
                etcd_local=LocalEtcd(image_repository="quay.test/coreos", image_tag="v3.6.0"))
    etcd = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["etcd"]
    assert etcd["spec"]["containers"][0]["image"] == "quay.test/coreos/etcd:v3.6.0"


# --- per-minor differences ----------------------------------------------------------------------

@pytest.mark.parametrize("minor", MINORS)
def test_probe_port_by_minor(minor):
    pods = pods_of(render_static_pods(cluster(minor), node_name="m1", advertise_address="10.0.0.11"))
    expected_ports = {"kube-apiserver": 6443, "kube-controller-manager": 10257, "kube-scheduler": 10259,
                      "etcd": 2381}
    for name, pod in pods.items():
        container = pod["spec"]["containers"][0]
        port = container["livenessProbe"]["httpGet"]["port"]
        if minor >= 34:
            assert port == "probe-port"
            assert container["ports"] == [{"containerPort": expected_ports[name], "name": "probe-port",
                                           "protocol": "TCP"}]
        else:
            assert port == expected_ports[name]
            assert "ports" not in container


@pytest.mark.parametrize("minor", MINORS)
def test_etcd_flags_by_minor(minor):
    f = flags(pods_of(render_static_pods(cluster(minor), node_name="m1", advertise_address="10.0.0.11"))["etcd"])
    if minor >= 34:
        assert f["feature-gates"] == ["InitialCorruptCheck=true"]
        assert f["watch-progress-notify-interval"] == ["5s"]
        assert not [k for k in f if k.startswith("experimental-")]
    else:
        assert f["experimental-initial-corrupt-check"] == ["true"]
        assert f["experimental-watch-progress-notify-interval"] == ["5s"]
        assert "feature-gates" not in f


@pytest.mark.parametrize("minor", MINORS)
def test_creation_timestamp_by_minor(minor):
    text = render_static_pods(cluster(minor), node_name="m1", advertise_address="10.0.0.11")["kube-scheduler"]
    assert (b"  creationTimestamp: null\n" in text) == (minor == 33)


@pytest.mark.parametrize("minor", MINORS)
def test_kubeadm_flags_env_by_minor(minor):
    c = cluster(minor)
    node = NodeRegistration(name="m1", cri_socket="unix:///run/crio/crio.sock")
    line = render_kubeadm_flags_env(c, node, host_hostname="m1").decode()
    assert line.startswith('KUBELET_KUBEADM_ARGS="') and line.endswith('"\n') and line.count("\n") == 1
    args = shlex.split(line.split("=", 1)[1])[0].split()
    names = [a.split("=", 1)[0] for a in args]
    assert ("--pod-infra-container-image" in names) == (minor <= 34)
    assert ("--container-runtime-endpoint" in names) == (minor <= 33)
    if minor <= 34:
        assert f"--pod-infra-container-image=registry.k8s.io/pause:{for_version(c.kubernetes_version).pause_tag}" in args


@pytest.mark.parametrize("gate", [True, False])
def test_node_local_cri_socket_gate_overrides_minor_default(gate):
    c = cluster(34, feature_gates=(("NodeLocalCRISocket", gate),))
    assert uses_instance_config(c) is gate
    line = render_kubeadm_flags_env(c, NodeRegistration(name="m1"), host_hostname="m1").decode()
    assert ("--container-runtime-endpoint=" in line) is not gate


def test_kubeadm_flags_env_hostname_taints_and_quoting():
    c = cluster(36)
    worker = NodeRegistration(name="w1", taints=(Taint("a", "NoSchedule", "b"), Taint("c", "NoExecute")),
                              kubelet_extra_args=(Arg("v", "2"), Arg("node-labels", 'x="y\\z"')))
    line = render_kubeadm_flags_env(c, worker, host_hostname="W1", worker_join=True).decode()
    # hostname compared lower-cased; taints only on worker joins; %q escaping of " and \;
    # 1.36: kubeadm's own flags first, then the user's in their order
    assert line == ('KUBELET_KUBEADM_ARGS="--register-with-taints=a=b:NoSchedule,c:NoExecute '
                    '--v=2 --node-labels=x=\\"y\\\\z\\""\n')
    cp = render_kubeadm_flags_env(c, worker, host_hostname="other-host").decode()
    assert "--register-with-taints" not in cp and "--hostname-override=w1" in cp
    assert render_kubeadm_flags_env(c, NodeRegistration(name="w1"), host_hostname="w1",
                                      worker_join=True) == b'KUBELET_KUBEADM_ARGS=""\n'


def test_kubelet_extra_args_override_sorted_before_136():
    c = cluster(35)
    node = NodeRegistration(name="m1", kubelet_extra_args=(Arg("v", "4"), Arg("container-runtime-endpoint", "x")))
    line = render_kubeadm_flags_env(c, node, host_hostname="m1").decode()
    assert line == 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=x --v=4"\n'


def test_instance_config():
    assert render_instance_config("unix:///var/run/containerd/containerd.sock") == \
        b'containerRuntimeEndpoint: "unix:///var/run/containerd/containerd.sock"\n'


# --- probes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("timeout, threshold", [(timedelta(minutes=4), 24), (timedelta(seconds=95), 10),
                                                (timedelta(seconds=5), 1)])
def test_startup_failure_threshold_from_timeout(timeout, threshold):
    pods = pods_of(render_static_pods(cluster(36), node_name="m1", advertise_address="10.0.0.11",
                                        timeouts=Timeouts(control_plane_component_health_check=timeout)))
    for pod in pods.values():
        assert pod["spec"]["containers"][0]["startupProbe"]["failureThreshold"] == threshold


def test_probe_hosts_follow_bind_addresses():
    c = cluster(36, scheduler=ControlPlaneComponent(extra_args=(Arg("bind-address", "0.0.0.0"),)),
                controller_manager=ControlPlaneComponent(extra_args=(Arg("bind-address", "10.0.0.11"),)))
    pods = pods_of(render_static_pods(c, node_name="m1", advertise_address="0.0.0.0"))
    assert "host" not in pods["kube-scheduler"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]
    assert "host" not in pods["kube-apiserver"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]
    kcm = pods["kube-controller-manager"]["spec"]["containers"][0]
    assert kcm["livenessProbe"]["httpGet"]["host"] == "10.0.0.11"
    assert "readinessProbe" not in kcm


# --- env, images ----------------------------------------------------------------------------------

def test_etcd_gets_no_proxy_env():
    c = cluster(36, etcd_local=LocalEtcd(extra_envs=(EnvVar("ETCD_QUOTA_BACKEND_BYTES", "8589934592"),)))
    pods = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11",
                                        proxy_env={"HTTPS_PROXY": "http://p:3128"}))
    assert pods["etcd"]["spec"]["containers"][0]["env"] == [
        {"name": "ETCD_QUOTA_BACKEND_BYTES", "value": "8589934592"}]
    assert pods["kube-scheduler"]["spec"]["containers"][0]["env"] == [
        {"name": "HTTPS_PROXY", "value": "http://p:3128"}]


def test_env_proxy_then_extra_envs_sorted():
    c = cluster(36, api_server=APIServer(extra_envs=(EnvVar("https_proxy", "http://override:1"),
                                                     EnvVar("A_VAR", "1"))))
    pod = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11",
                                       proxy_env={"https_proxy": "http://p:3128", "HTTP_PROXY": "",
                                                  "PATH": "/bin"}))["kube-apiserver"]
    assert pod["spec"]["containers"][0]["env"] == [{"name": "A_VAR", "value": "1"},
                                                   {"name": "https_proxy", "value": "http://override:1"}]


@pytest.mark.parametrize("repo, dns, expected", [
    ("registry.k8s.io", DNS(), "registry.k8s.io/coredns/coredns:{tag}"),
    ("mirror.test/k8s", DNS(), "mirror.test/k8s/coredns:{tag}"),
    ("registry.k8s.io", DNS(image_repository="dns.test", image_tag="v9"), "dns.test/coredns:v9"),
])
def test_coredns_image(repo, dns, expected):
    c = cluster(34, image_repository=repo, dns=dns)
    deploy = [o for o in render_coredns_objects(c) if o["kind"] == "Deployment"][0]
    tag = for_version(c.kubernetes_version).coredns_tag
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == expected.format(tag=tag)


def test_control_plane_image_tag_replaces_plus():
    c = cluster(36, kubernetes_version="v1.36.1+custom.1")
    api = pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))["kube-apiserver"]
    assert api["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-apiserver:v1.36.1_custom.1"


# --- kubelet config -------------------------------------------------------------------------------

def test_kubelet_config_fills_and_keeps_user_values():
    c = cluster(36, networking=Networking(service_subnet="10.112.0.0/12,fd00::/108", dns_domain="corp.test"),
                certificates_dir="/srv/pki")
    text = render_kubelet_config(c, {"rotateCertificates": False, "cgroupDriver": "cgroupfs",
                                       "authentication": {"webhook": {"cacheTTL": "2m"}},
                                       "featureGates": {}})
    doc = yaml.safe_load(text)
    assert dump_yaml(doc).encode() == text
    assert doc["rotateCertificates"] is True
    assert doc["cgroupDriver"] == "cgroupfs"
    assert doc["clusterDNS"] == ["10.112.0.10"]
    assert doc["clusterDomain"] == "corp.test"
    assert doc["authentication"] == {"anonymous": {"enabled": False},
                                     "webhook": {"cacheTTL": "2m", "enabled": True},
                                     "x509": {"clientCAFile": "/srv/pki/ca.crt"}}
    assert doc["authorization"]["mode"] == "Webhook"
    assert (doc["staticPodPath"], doc["healthzBindAddress"], doc["healthzPort"]) == \
        ("/etc/kubernetes/manifests", "127.0.0.1", 10248)
    assert "featureGates" not in doc
    assert doc["containerRuntimeEndpoint"] == ""
    node_doc = yaml.safe_load(render_kubelet_config(c, {}, cri_socket="unix:///run/crio/crio.sock"))
    assert node_doc["containerRuntimeEndpoint"] == "unix:///run/crio/crio.sock"


def test_kubelet_config_user_cluster_dns_wins():
    doc = yaml.safe_load(render_kubelet_config(cluster(33), {"clusterDNS": ["169.254.20.10"]}))
    assert doc["clusterDNS"] == ["169.254.20.10"]


def test_kubelet_config_rejects_foreign_kind():
    with pytest.raises(ConfigError):
        render_kubelet_config(cluster(33), {"kind": "KubeProxyConfiguration"})


def test_kubelet_dropin():
    text = render_kubelet_dropin().decode()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "[Service]",
        'Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf '
        '--kubeconfig=/etc/kubernetes/kubelet.conf"',
        'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"',
        "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env",
        "EnvironmentFile=-/etc/default/kubelet",
        "ExecStart=",
        "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS "
        "$KUBELET_EXTRA_ARGS",
    ]


# --- addons -------------------------------------------------------------------------------------

def test_coredns_service_and_corefile():
    c = cluster(35, networking=Networking(service_subnet="10.100.0.0/16", dns_domain="corp.test"))
    objs = {o["kind"]: o for o in render_coredns_objects(c)}
    assert objs["Service"]["metadata"]["name"] == "kube-dns"
    assert objs["Service"]["spec"]["clusterIP"] == "10.100.0.10"
    corefile = objs["ConfigMap"]["data"]["Corefile"]
    assert "    kubernetes corp.test in-addr.arpa ip6.arpa {\n" in corefile
    assert corefile.startswith(".:53 {\n") and corefile.endswith("}\n")
    spec = objs["Deployment"]["spec"]["template"]["spec"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in spec["tolerations"]


def test_kube_proxy_configmap_hash_and_contents():
    c = cluster(36, networking=Networking(pod_subnet="10.244.0.0/16"))
    objs = render_kube_proxy_objects(c, {"mode": "ipvs", "ipvs": {"strictARP": True}},
                                       control_plane_url=CP_URL, advertise_address="10.0.0.11")
    cm = [o for o in objs if o["kind"] == "ConfigMap"][0]
    data = cm["data"]
    assert cm["metadata"]["annotations"]["kubeadm.kubernetes.io/component-config.hash"] == \
        component_config_hash(data)
    assert not data["config.conf"].endswith("\n") and not data["kubeconfig.conf"].endswith("\n")
    conf = yaml.safe_load(data["config.conf"])
    assert conf["mode"] == "ipvs" and conf["ipvs"]["strictARP"] is True
    assert conf["ipvs"]["syncPeriod"] == "0s"
    assert conf["clusterCIDR"] == "10.244.0.0/16"
    assert conf["bindAddress"] == "0.0.0.0"
    assert conf["clientConnection"]["kubeconfig"] == "/var/lib/kube-proxy/kubeconfig.conf"
    kubeconfig = yaml.safe_load(data["kubeconfig.conf"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == CP_URL
    assert kubeconfig["current-context"] == "default"
    ds = [o for o in objs if o["kind"] == "DaemonSet"][0]
    container = ds["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.k8s.io/kube-proxy:v1.36.0"
    assert container["env"][0]["name"] == "NODE_NAME"


def test_component_config_hash_order():
    data = {"b": "2", "a": "1"}
    assert component_config_hash(data) == "sha256:" + hashlib.sha256(b"12").hexdigest()
    assert component_config_hash(data, {"z": b"\x00", "y": b"\x01"}) == \
        "sha256:" + hashlib.sha256(b"12\x01\x00").hexdigest()


@pytest.mark.parametrize("cidr, n, expected", [
    ("10.96.0.0/12", 10, "10.96.0.10"),
    ("10.96.0.0/12", 1, "10.96.0.1"),
    ("10.96.0.0/12,fd00::/108", 10, "10.96.0.10"),
    ("fd00::/108, 10.96.0.0/12", 1, "fd00::1"),
])
def test_service_ip(cidr, n, expected):
    assert service_ip(cidr, n) == expected


@pytest.mark.parametrize("cidr", ["10.96.0.0/29", "not-a-cidr"])
def test_service_ip_errors(cidr):
    with pytest.raises(ConfigError):
        service_ip(cidr, 10)


def test_external_etcd_cert_dirs_minimal_set():
    c = cluster(36, etcd_local=None, etcd_external=ExternalEtcd(
        endpoints=("https://10.0.0.5:2379",), ca_file="/srv/etcd/ca.crt",
        cert_file="/srv/etcd/client/cert.pem", key_file="/etc/pki/tls/certs/etcd.key"))
    vols = volumes(pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11",
                                                host_ca_dirs=()))["kube-apiserver"])
    # /srv/etcd covers /srv/etcd/client; /etc/pki/tls/certs is a CA candidate dir, never re-mounted
    assert {n: v["hostPath"]["path"] for n, v in vols.items() if n.startswith("etcd-certs")} == \
        {"etcd-certs-0": "/srv/etcd"}


@pytest.mark.parametrize("external_ca", [False, True])
def test_external_ca_empties_the_controller_manager_signing_flags(external_ca):
    pods = pods_of(render_static_pods(cluster(36), node_name="cp1", advertise_address="10.0.0.1",
                                      external_ca=external_ca))
    f = flags(pods["kube-controller-manager"])
    want = [""] if external_ca else ["/etc/kubernetes/pki/ca.crt"]
    assert f["cluster-signing-cert-file"] == want
    assert f["cluster-signing-key-file"] == ([""] if external_ca else ["/etc/kubernetes/pki/ca.key"])


def test_etcd_mounts_data_first_volumes_by_name():
    pod = pods_of(render_static_pods(cluster(36), node_name="cp1", advertise_address="10.0.0.1"))["etcd"]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["etcd-certs", "etcd-data"]
    assert [v["name"] for v in pod["spec"]["containers"][0]["volumeMounts"]] == ["etcd-data", "etcd-certs"]


@pytest.mark.parametrize("user, resolved, want, warns", [
    ({}, True, SYSTEMD_RESOLVED_RESOLV_CONF, False),
    ({}, False, None, False),
    ({"resolvConf": "/etc/my-resolv.conf"}, True, "/etc/my-resolv.conf", True),
    ({"resolvConf": SYSTEMD_RESOLVED_RESOLV_CONF}, True, SYSTEMD_RESOLVED_RESOLV_CONF, False),
])
def test_resolv_conf_where_systemd_resolved_runs(user, resolved, want, warns):
    doc = yaml.safe_load(render_kubelet_config(cluster(36), user, cri_socket="unix:///run/containerd/containerd.sock",
                                                 systemd_resolved=resolved))
    assert doc.get("resolvConf") == want
    assert (resolver_mutation(dict(user), resolved) is not None) == warns
    # the ConfigMap copy (no node) never carries the node's resolver
    assert "resolvConf" not in yaml.safe_load(render_kubelet_config(cluster(36), {}))


@pytest.mark.parametrize("version, keeps", [
    ("v1.33.7", False), ("v1.33.8", True), ("v1.34.3", False), ("v1.34.4", True),
    ("v1.35.0", False), ("v1.35.1", True), ("v1.36.0", True), ("1.35", False),
])
def test_extra_args_order_follows_the_patch_release_with_the_backport(version, keeps):
    assert keeps_user_arg_order(version) is keeps
    c = replace(ClusterConfiguration(kubernetes_version=version), api_server=APIServer(extra_args=(
        Arg("service-account-issuer", "https://new"), Arg("service-account-issuer", "https://a-old"))))
    args = command(pods_of(render_static_pods(c, node_name="m1", advertise_address="10.0.0.11"))
                   ["kube-apiserver"])[1:]
    issuers = [a for a in args if a.startswith("--service-account-issuer=")]
    assert issuers == (["--service-account-issuer=https://new", "--service-account-issuer=https://a-old"] if keeps
                       else ["--service-account-issuer=https://a-old", "--service-account-issuer=https://new"])
