"""kubeadm judges kubefab's verdicts: a config kubeadm refuses, kubefab refuses; one kubeadm
accepts (perhaps with a warning), kubefab accepts.

Each case changes the example config (tests/judge/configs.py) in one place and goes through
``kubeadm config validate --config`` of the newest minor and kubefab's loader (the same
function ``fab init`` reads the file with). Where kubefab decides otherwise on purpose, the
case says so in ON_PURPOSE with the reason.

Needs the kubeadm binary ``make lab-k8s`` builds.
"""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from tasks.core.config.load import load_config_text
from tasks.core.errors import ConfigError
from tests.judge import configs, render

pytestmark = pytest.mark.kubeadm

MINOR = 36


def _set(path: str, value):
    """A change: set ``doc.path.to.field`` (doc 0 InitConfiguration, 1 ClusterConfiguration)."""
    def change(docs):
        doc, *keys = path.split(".")
        node = docs[int(doc)]
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return change


CASES = {
    "the example": lambda docs: None,
    "unknown field": _set("1.foo", "bar"),
    "unknown field in a nested struct": _set("1.networking.podSubnetz", "10.0.0.0/8"),
    "pod subnet with a bad prefix": _set("1.networking.podSubnet", "10.244.0.0/33"),
    "service subnet not a CIDR": _set("1.networking.serviceSubnet", "10.96.0.0"),
    "advertise address not an IP": _set("0.localAPIEndpoint.advertiseAddress", "master-one"),
    "bind port out of range": _set("0.localAPIEndpoint.bindPort", 70000),
    "control-plane endpoint with a bad port": _set("1.controlPlaneEndpoint", "192.0.2.10:http"),
    "bootstrap token of the wrong form": _set("0.bootstrapTokens", [{"token": "abcdef.short"}]),
    "bootstrap token well formed": _set("0.bootstrapTokens", [{"token": "abcdef.0123456789abcdef"}]),
    "unknown feature gate": _set("1.featureGates", {"NoSuchGate": True}),
    "encryption algorithm unknown": _set("1.encryptionAlgorithm", "RSA-1024"),
    "encryption algorithm ECDSA-P384": _set("1.encryptionAlgorithm", "ECDSA-P384"),
    "cert SAN not a name": _set("1.apiServer.certSANs", ["not a name!"]),
    "dns domain not a name": _set("1.networking.dnsDomain", "cluster..local"),
    "certificate validity longer than the CA's": _set("1.certificateValidityPeriod", "100000h"),
    "etcd local and external both": _set("1.etcd", {"local": {"dataDir": "/var/lib/etcd"},
                                                     "external": {"endpoints": ["https://192.0.2.31:2379"]}}),
    "etcd data dir relative": _set("1.etcd", {"local": {"dataDir": "var/lib/etcd"}}),
    "image pull policy unknown": _set("0.nodeRegistration.imagePullPolicy", "Sometimes"),
    "kubelet extra arg without a name": _set("0.nodeRegistration.kubeletExtraArgs", [{"value": "x"}]),
    "taint with a bad effect": _set("0.nodeRegistration.taints", [{"key": "a", "effect": "Never"}]),
    "cluster name with an upper-case letter": _set("1.clusterName", "Example"),
}

# case -> why kubefab's verdict differs from kubeadm's
ON_PURPOSE: dict[str, str] = {
    "taint with a bad effect": "kubeadm's validation takes any effect, and its init then fails half-way when the "
                               "API server refuses the Node's taint (only NoSchedule, PreferNoSchedule and "
                               "NoExecute exist); kubefab refuses the file before anything is written",
}


def kubeadm_verdict(text: str, tmp_path) -> tuple[bool, str]:
    path = tmp_path / "kubeadm.yaml"
    path.write_text(text)
    proc = subprocess.run([str(render.kubeadm_binary(MINOR)), "config", "validate", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def kubefab_verdict(text: str) -> tuple[bool, str]:
    try:
        load_config_text(text, source="kubeadm.yaml", node_name="master1",
                                        advertise_address=configs.ADDRESS)
    except ConfigError as exc:
        return False, exc.render()
    return True, ""


@pytest.mark.parametrize("case", list(CASES))
def test_kubefab_refuses_what_kubeadm_refuses(case, tmp_path):
    docs = copy.deepcopy(list(yaml.safe_load_all(configs.config(MINOR, "example"))))
    CASES[case](docs)
    text = yaml.safe_dump_all(docs, sort_keys=False)
    theirs, their_words = kubeadm_verdict(text, tmp_path)
    ours, our_words = kubefab_verdict(text)
    if case in ON_PURPOSE:
        assert theirs != ours, f"{case}: listed as a deliberate difference, but both say {theirs}"
        return
    assert ours == theirs, (f"{case}: kubeadm {'accepts' if theirs else 'refuses'} it "
                            f"({their_words[-400:]}), kubefab {'accepts' if ours else 'refuses'} it "
                            f"({our_words[-400:]})")
    if not ours:
        assert "fix:" in our_words and "Traceback" not in our_words
