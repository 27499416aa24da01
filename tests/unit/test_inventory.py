"""The kubefab inventory: schema, defaults, validation (all at once), host lookup, kubeadm config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tasks.core.errors import ConfigError
from tasks.core.inventory import Host, load_inventory, parse_inventory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventory" / "hosts.yaml"

KUBEADM = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.35.1
clusterName: lab
networking: {podSubnet: 10.244.0.0/16}
"""


def write(tmp_path: Path, inventory: dict | str, kubeadm: str | None = KUBEADM) -> Path:
    if kubeadm is not None:
        (tmp_path / "kubeadm.yaml").write_text(kubeadm)
    path = tmp_path / "inv.yaml"
    path.write_text(inventory if isinstance(inventory, str) else yaml.safe_dump(inventory, sort_keys=False))
    return path


def base(**over) -> dict:
    inv = {
        "cluster": {"name": "lab", "config": "kubeadm.yaml"},
        "hosts": {
            "Node1": {"address": "10.0.0.1", "roles": ["control-plane"]},
            "node2": {"address": "10.0.0.2", "roles": ["control-plane"], "node_name": "cp-two",
                      "advertise_address": "10.1.0.2", "user": "admin", "port": 2222},
            "node3": {"address": "10.0.0.3", "roles": ["worker"]},
            "node4": {"address": "node4.example.com", "roles": ["worker"]},
        },
        "ssh": {"user": "root", "port": 22, "identity": "keys/id", "known_hosts": "known_hosts",
                "ssh_config": "ssh_config"},
    }
    inv.update(over)
    return inv


def problems(tmp_path: Path, inventory, kubeadm: str | None = KUBEADM) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_inventory(write(tmp_path, inventory, kubeadm))
    return list(exc.value.details)


# --- the example HA inventory --------------------------------------------------------------------
def test_example_inventory():
    inv = load_inventory(EXAMPLE)
    assert inv.cluster_name == "example"
    assert [h.name for h in inv.control_planes] == ["master1", "master2", "master3"]
    assert [h.name for h in inv.workers] == ["worker1", "worker2"]
    assert [h.address for h in inv.hosts] == ["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.21", "192.0.2.22"]
    assert inv.first_control_plane.name == "master1"
    assert inv.ssh.user == "root" and all(h.user == "root" for h in inv.hosts)
    assert inv.state_dir == EXAMPLE.parent / ".kubefab" / "example"
    cfg = inv.kubeadm_config(inv.host("master2"))
    assert cfg.cluster.control_plane_endpoint == "192.0.2.10:6443"
    assert cfg.cluster.networking.pod_subnet == "10.244.0.0/16"
    assert cfg.init.node_registration.name == "master2"
    assert cfg.init.local_api_endpoint.advertise_address == "192.0.2.12"
    assert cfg.init.certificate_key is None
    assert cfg.source == "kubeadm.yaml"


def test_example_kubeadm_file_is_v1beta4_init_and_cluster():
    docs = list(yaml.safe_load_all((EXAMPLE.parent / "kubeadm.yaml").read_text()))
    assert {d["kind"] for d in docs} == {"InitConfiguration", "ClusterConfiguration"}
    assert all(d["apiVersion"] == "kubeadm.k8s.io/v1beta4" for d in docs)


# --- host defaults -------------------------------------------------------------------------------
def test_host_defaults_and_overrides(tmp_path):
    inv = load_inventory(write(tmp_path, base()))
    n1, n2, n3, n4 = inv.hosts
    assert n1 == Host("Node1", "10.0.0.1", ("control-plane",), "node1", "root", 22, "10.0.0.1")
    assert n1.is_control_plane and not n1.is_worker
    assert (n2.node_name, n2.advertise_address, n2.user, n2.port) == ("cp-two", "10.1.0.2", "admin", 2222)
    assert n3.is_worker and not n3.is_control_plane and n3.advertise_address == "10.0.0.3"
    assert n4.advertise_address == ""  # a DNS address gives no advertise address (workers need none)


def test_ssh_paths_are_resolved_against_the_inventory(tmp_path):
    inv = load_inventory(write(tmp_path, base()))
    assert inv.ssh.identity == str(tmp_path / "keys" / "id")
    assert inv.ssh.known_hosts == str(tmp_path / "known_hosts")
    assert inv.ssh.ssh_config == str(tmp_path / "ssh_config")


def test_ssh_section_is_optional(tmp_path):
    inv = load_inventory(write(tmp_path, base(ssh=None)))
    assert inv.ssh.user is None and inv.ssh.port is None and inv.ssh.identity == ""
    assert inv.hosts[0].user is None and inv.hosts[0].port is None


def test_state_dir_is_next_to_the_inventory(tmp_path):
    assert load_inventory(write(tmp_path, base())).state_dir == tmp_path / ".kubefab" / "lab"


def test_roles_both(tmp_path):
    inv = base()
    inv["hosts"]["node3"]["roles"] = ["control-plane", "worker"]
    loaded = load_inventory(write(tmp_path, inv))
    assert [h.name for h in loaded.control_planes] == ["Node1", "node2", "node3"]
    assert [h.name for h in loaded.workers] == ["node4"]


# --- lookup ----------------------------------------------------------------------------------------
def test_host_lookup_by_name_node_name_or_address(tmp_path):
    inv = load_inventory(write(tmp_path, base()))
    assert inv.host("node2").name == "node2"
    assert inv.host("cp-two").name == "node2"
    assert inv.host("10.0.0.3").name == "node3"
    assert inv.host("node1").name == "Node1"  # the default node name


def test_unknown_host_names_it_and_lists_the_known(tmp_path):
    inv = load_inventory(write(tmp_path, base()))
    with pytest.raises(ConfigError) as exc:
        inv.host("node9")
    assert "'node9'" in exc.value.problem
    assert exc.value.fix == "use one of Node1, node2, node3, node4"


def test_resolve_keeps_order_drops_duplicates(tmp_path):
    inv = load_inventory(write(tmp_path, base()))
    assert [h.name for h in inv.resolve(["node3", "cp-two", "10.0.0.3", " Node1 "])] == ["node3", "node2", "Node1"]


def test_resolve_reports_every_unknown_name(tmp_path):
    inv = load_inventory(write(tmp_path, base()))
    with pytest.raises(ConfigError) as exc:
        inv.resolve(["node1", "x", "y"])
    assert "'x'" in exc.value.problem and "'y'" in exc.value.problem and "use one of" in exc.value.fix


# --- kubeadm config per host -----------------------------------------------------------------------
def test_kubeadm_config_uses_host_fallbacks(tmp_path):
    inv = load_inventory(write(tmp_path, base()))
    cfg = inv.kubeadm_config(inv.host("Node1"))
    assert cfg.init.node_registration.name == "node1"
    assert cfg.init.local_api_endpoint.advertise_address == "10.0.0.1"
    assert cfg.cluster.kubernetes_version == "v1.35.1"
    assert inv.kubeadm_config(inv.host("Node1")) is cfg  # loaded once per host


def test_file_node_values_fill_only_when_the_host_is_silent(tmp_path):
    kubeadm = KUBEADM + ("---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
                         "nodeRegistration: {name: from-file}\nlocalAPIEndpoint: {advertiseAddress: 10.9.9.9}\n")
    inv = load_inventory(write(tmp_path, base(), kubeadm))
    silent = inv.kubeadm_config(inv.host("Node1"))
    assert silent.init.node_registration.name == "from-file"
    assert silent.init.local_api_endpoint.advertise_address == "10.9.9.9"
    explicit = inv.kubeadm_config(inv.host("node2"))  # node_name and advertise_address set on the host
    assert explicit.init.node_registration.name == "cp-two"
    assert explicit.init.local_api_endpoint.advertise_address == "10.1.0.2"


def test_explicit_advertise_address_reaches_a_control_plane_join(tmp_path):
    kubeadm = KUBEADM + "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ncontrolPlane: {}\n"
    inv = load_inventory(write(tmp_path, base(), kubeadm))
    cfg = inv.kubeadm_config(inv.host("node2"))
    assert cfg.init is None
    assert cfg.join.control_plane.local_api_endpoint.advertise_address == "10.1.0.2"
    assert cfg.join.node_registration.name == "cp-two"


def test_inline_cluster_fields_override_the_file(tmp_path):
    inv = base()
    inv["cluster"].update({"controlPlaneEndpoint": "10.0.0.100:6443", "networking": {"podSubnet": "10.32.0.0/12"}})
    loaded = load_inventory(write(tmp_path, inv))
    cfg = loaded.kubeadm_config(loaded.first_control_plane)
    assert cfg.cluster.control_plane_endpoint == "10.0.0.100:6443"
    assert cfg.cluster.networking.pod_subnet == "10.32.0.0/12"
    assert cfg.cluster.cluster_name == "lab"


def test_no_config_file_means_kubeadm_defaults(tmp_path):
    inv = base()
    inv["cluster"] = {"name": "lab", "kubernetesVersion": "1.34"}
    loaded = load_inventory(write(tmp_path, inv, kubeadm=None))
    cfg = loaded.kubeadm_config(loaded.first_control_plane)
    assert cfg.cluster.kubernetes_version == "v1.34.0" and cfg.cluster.cluster_name == "kubernetes"
    assert cfg.init.node_registration.name == "node1"


def test_lab_style_inventory(tmp_path):
    """The shape tests/lab writes: inline controlPlaneEndpoint, ssh files beside the inventory."""
    kubeadm = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
               "localAPIEndpoint: {advertiseAddress: 10.0.0.1, bindPort: 6443}\nnodeRegistration: {name: node1}\n"
               "---\n" + KUBEADM + "controlPlaneEndpoint: 10.0.0.100:6443\n")
    inv = {"cluster": {"name": "lab", "config": "kubeadm.yaml", "controlPlaneEndpoint": "10.0.0.100:6443"},
           "hosts": {"node1": {"address": "10.0.0.1", "roles": ["control-plane"]},
                     "node4": {"address": "10.0.0.4", "roles": ["worker"]}},
           "ssh": {"user": "root", "port": 22, "identity": "id_ed25519", "known_hosts": "known_hosts",
                   "ssh_config": "ssh_config"}}
    loaded = load_inventory(write(tmp_path, inv, kubeadm))
    assert loaded.kubeadm_config(loaded.host("node1")).cluster.control_plane_endpoint == "10.0.0.100:6443"


# --- validation ------------------------------------------------------------------------------------
def _with(mutate):
    inv = base()
    mutate(inv)
    return inv


BAD = [
    ("unknown top-level key", lambda i: i.update(hostz={}), "(top level).hostz", "unknown key 'hostz'"),
    ("unknown host key", lambda i: i["hosts"]["node3"].update(adress="x"), "hosts.node3.adress",
     "did you mean 'address'?"),
    ("unknown ssh key", lambda i: i["ssh"].update(identity_file="k"), "ssh.identity_file", "unknown key"),
    ("bad role", lambda i: i["hosts"]["node3"].update(roles=["master"]), "hosts.node3.roles[0]", "control-plane"),
    ("roles missing", lambda i: i["hosts"]["node3"].pop("roles"), "hosts.node3.roles", "required"),
    ("roles empty", lambda i: i["hosts"]["node3"].update(roles=[]), "hosts.node3.roles", "non-empty list"),
    ("address missing", lambda i: i["hosts"]["node3"].pop("address"), "hosts.node3.address", "required"),
    ("duplicate address", lambda i: i["hosts"]["node3"].update(address="10.0.0.1"), "hosts.node3",
     "address '10.0.0.1' is also used by host 'Node1'"),
    ("duplicate node name", lambda i: i["hosts"]["node3"].update(node_name="node1"), "hosts.node3",
     "node name 'node1' is also used by host 'Node1'"),
    ("bad node name", lambda i: i["hosts"]["node3"].update(node_name="Node_3"), "hosts.node3.node_name", "DNS-1123"),
    ("bad port", lambda i: i["hosts"]["node3"].update(port=70000), "hosts.node3.port", "1 to 65535"),
    ("bad ssh port", lambda i: i["ssh"].update(port="ssh"), "ssh.port", "1 to 65535"),
    ("advertise not an IP", lambda i: i["hosts"]["node2"].update(advertise_address="cp2.local"),
     "hosts.node2.advertise_address", "not an IP"),
    ("control plane without an IP", lambda i: i["hosts"]["node4"].update(roles=["control-plane"]),
     "hosts.node4.advertise_address", "required for a control plane"),
    ("cluster name missing", lambda i: i["cluster"].pop("name"), "cluster.name", "required"),
    ("cluster name bad", lambda i: i["cluster"].update(name="My Cluster"), "cluster.name", "lower case"),
    ("inline apiVersion", lambda i: i["cluster"].update(apiVersion="v1"), "cluster.apiVersion", "not allowed inline"),
    ("inline unknown field", lambda i: i["cluster"].update(podSubnet="10.0.0.0/16"), "cluster.podSubnet",
     "unknown field"),
    ("inline bad value", lambda i: i["cluster"].update(controlPlaneEndpoint="LB:6443"), "cluster.controlPlaneEndpoint",
     "DNS-1123"),
    ("hosts not a mapping", lambda i: i.update(hosts=["node1"]), "hosts", "must be a mapping"),
]


@pytest.mark.parametrize("mutate,field,fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_each_inventory_error_names_file_and_key(tmp_path, mutate, field, fragment):
    details = problems(tmp_path, _with(mutate))
    hits = [d for d in details if d.startswith(f"inv.yaml: {field}: ")]
    assert hits, details
    assert any(fragment in d for d in hits), hits


def test_no_control_plane(tmp_path):
    inv = base()
    for h in inv["hosts"].values():
        h["roles"] = ["worker"]
    assert any(d.startswith("inv.yaml: hosts: no host has the control-plane role") for d in problems(tmp_path, inv))


def test_no_hosts(tmp_path):
    assert any(d.startswith("inv.yaml: hosts: required") for d in problems(tmp_path, base(hosts={})))


def test_all_problems_at_once_including_the_kubeadm_config(tmp_path):
    inv = base()
    inv["hosts"]["node3"].update(roles=["boss"], colour="red")
    inv["hosts"]["node4"]["address"] = "10.0.0.1"
    inv["ssh"]["passwd"] = "x"
    kubeadm = KUBEADM + "encryptionAlgorithm: DSA\n"
    with pytest.raises(ConfigError) as exc:
        load_inventory(write(tmp_path, inv, kubeadm))
    d = exc.value.details
    assert len(d) == 5, d
    assert any(x.startswith("inv.yaml: hosts.node3.roles[0]:") for x in d)
    assert any(x.startswith("inv.yaml: hosts.node3.colour:") for x in d)
    assert any(x.startswith("inv.yaml: hosts.node4: address") for x in d)
    assert any(x.startswith("inv.yaml: ssh.passwd:") for x in d)
    assert any(x.startswith("kubeadm.yaml: ClusterConfiguration.encryptionAlgorithm:") for x in d)
    assert exc.value.problem == "inv.yaml: 5 problems in the inventory" and exc.value.fix


def test_missing_kubeadm_config_is_reported_at_load(tmp_path):
    details = problems(tmp_path, base(), kubeadm=None)
    assert any(x.startswith("inv.yaml: cluster.config: ") and x.endswith("kubeadm.yaml does not exist")
               for x in details), details


def test_inline_fields_are_checked_even_when_the_config_file_is_missing(tmp_path):
    inv = base()
    inv["cluster"]["networking"] = {"podSubnet": "bad"}
    details = problems(tmp_path, inv, kubeadm=None)
    assert any(x.startswith("inv.yaml: cluster.config: ") for x in details)
    assert any(x.startswith("inv.yaml: cluster.networking.podSubnet: ") for x in details), details


def test_missing_inventory(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_inventory(tmp_path / "none.yaml")
    assert "none.yaml" in exc.value.problem and "--inventory" in exc.value.fix


@pytest.mark.parametrize("text,fragment", [
    ("hosts: [\n", "line 2, column 1"),
    ("- a\n", "must be a mapping"),
])
def test_malformed_inventory(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as exc:
        parse_inventory(text, tmp_path / "inv.yaml")
    assert fragment in str(exc.value) and "inv.yaml" in str(exc.value)


def test_join_config_follows_the_inventory_role(tmp_path):
    inv = load_inventory(write(tmp_path, base()))
    worker = inv.kubeadm_config(inv.host("node4"), join=True)  # DNS address: no advertise address needed
    assert worker.init is None and worker.join.control_plane is None
    assert worker.join.node_registration.name == "node4"
    cp = inv.kubeadm_config(inv.host("node2"), join=True)
    assert cp.join.control_plane.local_api_endpoint.advertise_address == "10.1.0.2"
    assert cp.join.node_registration.name == "cp-two"
    assert inv.kubeadm_config(inv.host("node2")).init is not None  # the init view is cached apart


def test_init_ignores_the_join_configuration_beside_it(tmp_path):
    """One file for init and join (the lab's, an operator's): init reads it as kubeadm init does."""
    text = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
            "nodeRegistration: {ignorePreflightErrors: [SystemVerification]}\n---\n"
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"
            "nodeRegistration: {ignorePreflightErrors: [SystemVerification, Swap]}\n")
    inv = load_inventory(write(tmp_path, base(), text))
    init = inv.kubeadm_config(inv.host("node1"))
    assert init.join is None and init.init.node_registration.ignore_preflight_errors == ("systemverification",)
    join = inv.kubeadm_config(inv.host("node4"), join=True)
    assert join.init is None and join.join.node_registration.ignore_preflight_errors == ("systemverification", "swap")
