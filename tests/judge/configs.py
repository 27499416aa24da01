"""The configurations kubeadm judges kubefab on, one kubeadm config each (v1beta4, every minor).

Each names the node (``master1``) and its address, as kubeadm needs; kubefab gets the same file
and an inventory with the same host and address.
"""

from __future__ import annotations

import copy

import yaml

from tests.lab import images

ADDRESS = "192.0.2.11"


def _example() -> list[dict]:
    """The example inventory's config (inventory/kubeadm.yaml with the inventory's cluster fields)."""
    return [
        {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
         "localAPIEndpoint": {"advertiseAddress": ADDRESS, "bindPort": 6443},
         "nodeRegistration": {"name": "master1", "criSocket": "unix:///var/run/containerd/containerd.sock",
                              "kubeletExtraArgs": [{"name": "node-labels",
                                                    "value": "example.com/managed-by=kubefab"}]}},
        {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration", "clusterName": "example",
         "controlPlaneEndpoint": "192.0.2.10:6443",
         "networking": {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"},
         "apiServer": {"certSANs": ["192.0.2.10", "api.example.com"]}},
    ]


def _extras(docs: list[dict]) -> None:
    """extraArgs, extraVolumes and extraEnvs on every component, and on the kubelet."""
    cluster = docs[1]
    volume = {"name": "audit", "hostPath": "/var/log/kubernetes", "mountPath": "/var/log/kubernetes",
              "readOnly": False, "pathType": "DirectoryOrCreate"}
    env = [{"name": "GOMAXPROCS", "value": "2"}, {"name": "HTTPS_PROXY", "value": "http://proxy.example:3128"}]
    cluster["apiServer"].update({
        "extraArgs": [{"name": "audit-log-path", "value": "/var/log/kubernetes/audit.log"},
                      {"name": "authorization-mode", "value": "Node,RBAC"},
                      {"name": "max-requests-inflight", "value": "800"},
                      {"name": "tls-cipher-suites", "value": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}],
        "extraVolumes": [volume], "extraEnvs": env})
    cluster["controllerManager"] = {
        "extraArgs": [{"name": "node-cidr-mask-size", "value": "25"}, {"name": "bind-address", "value": "0.0.0.0"}],
        "extraVolumes": [dict(volume, name="flex", hostPath="/opt/flex", mountPath="/opt/flex", readOnly=True,
                              pathType="Directory")],
        "extraEnvs": env[:1]}
    cluster["scheduler"] = {"extraArgs": [{"name": "v", "value": "2"}], "extraEnvs": env[1:],
                            "extraVolumes": [dict(volume, name="sched", readOnly=True)]}
    cluster["etcd"] = {"local": {"extraArgs": [{"name": "snapshot-count", "value": "5000"},
                                               {"name": "heartbeat-interval", "value": "250"}],
                                 "extraEnvs": [{"name": "ETCD_UNSUPPORTED_ARCH", "value": "amd64"}],
                                 "serverCertSANs": ["etcd.example.com"], "peerCertSANs": ["192.0.2.99"]}}
    docs[0]["nodeRegistration"]["kubeletExtraArgs"].append({"name": "max-pods", "value": "150"})


def _external_etcd(docs: list[dict]) -> None:
    docs[1]["etcd"] = {"external": {"endpoints": ["https://192.0.2.31:2379", "https://192.0.2.32:2379"],
                                    "caFile": "/etc/etcd/pki/ca.crt", "certFile": "/etc/etcd/pki/client.crt",
                                    "keyFile": "/etc/etcd/pki/client.key"}}


def _dual_stack(docs: list[dict]) -> None:
    docs[1]["networking"].update({"podSubnet": "10.244.0.0/16,fd00:10:244::/56",
                                  "serviceSubnet": "10.96.0.0/16,fd00:10:96::/112"})
    docs[1]["apiServer"]["certSANs"].append("2001:db8::10")


def _ecdsa(docs: list[dict]) -> None:
    docs[1].update({"encryptionAlgorithm": "ECDSA-P256", "certificateValidityPeriod": "2400h0m0s",
                    "caCertificateValidityPeriod": "43800h0m0s"})


def _etcd_image(docs: list[dict]) -> None:
    docs[1]["etcd"] = {"local": {"imageRepository": "registry.example.com/etcd", "imageTag": "3.6.8-custom"}}


def _image_repository(docs: list[dict]) -> None:
    docs[1]["imageRepository"] = "registry.example.com/k8s"
    docs[0]["nodeRegistration"]["imagePullPolicy"] = "Always"


# --patches: one patch directory per run, written next to the config (see patch_files)
PATCH_FILES = {
    # strategic (the default type): resources, a new env var, a new volume and its mount (new items
    # of merged lists come before the existing ones, in apimachinery's order)
    "kube-apiserver.yaml": """\
spec:
  containers:
  - name: kube-apiserver
    resources:
      requests:
        cpu: 500m
        memory: 512Mi
      limits:
        memory: 2Gi
    env:
    - name: GOGC
      value: "50"
    volumeMounts:
    - name: audit-policy
      mountPath: /etc/kubernetes/audit
      readOnly: true
  volumes:
  - name: audit-policy
    hostPath:
      path: /etc/kubernetes/audit
      type: DirectoryOrCreate
""",
    # applied after kube-apiserver.yaml (the suffix orders the files): a JSON patch adding an argument
    "kube-apiserver1+json.yaml": """\
- op: add
  path: /spec/containers/0/command/-
  value: --audit-policy-file=/etc/kubernetes/audit/policy.yaml
""",
    "etcd+json.json": '[{"op": "replace", "path": "/spec/containers/0/resources/requests/memory", "value": "256Mi"},'
                      ' {"op": "add", "path": "/metadata/labels/backup", "value": "daily"}]\n',
    # two merge patches in one file
    "kube-scheduler+merge.yaml": """\
metadata:
  annotations:
    example.com/patched: "true"
---
spec:
  priority: null
  dnsPolicy: ClusterFirstWithHostNet
""",
    "kubeletconfiguration.yaml": """\
maxPods: 150
evictionHard:
  memory.available: 200Mi
  nodefs.available: 5%
""",
    "corednsdeployment.yaml": """\
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: coredns
        resources:
          limits:
            memory: 256Mi
""",
    # kubeadm walks sub-directories too
    "more/kube-controller-manager+strategic.yaml": """\
spec:
  containers:
  - name: kube-controller-manager
    env:
    - name: GOMAXPROCS
      value: "4"
""",
    # ignored: not .yaml/.json, unknown target, empty
    "README.md": "patches for the judge\n",
    "kube-proxy.yaml": "spec: {}\n",
    "etcd0.yaml": "",
}


# strategic-merge directives and ordering, over the "extras" configuration (env, volumes, mounts exist)
DIRECTIVE_FILES = {
    "kube-apiserver.yaml": """\
spec:
  containers:
  - name: kube-apiserver
    env:
    - name: HTTPS_PROXY
      $patch: delete
    - name: ZZ_NEW
      value: "1"
    - name: GOMAXPROCS
      value: "4"
    volumeMounts:
    - mountPath: /var/log/kubernetes
      $patch: delete
    - mountPath: /etc/kubernetes/pki
      name: k8s-certs
      readOnly: false
  volumes:
  - name: audit
    $patch: delete
""",
    "kube-apiserver1.yaml": """\
spec:
  containers:
  - name: kube-apiserver
    $setElementOrder/env:
    - name: GOMAXPROCS
    - name: A_ADDED
    - name: ZZ_NEW
    env:
    - name: A_ADDED
      value: x
    $setElementOrder/volumeMounts:
    - mountPath: /usr/share/ca-certificates
    - mountPath: /etc/ssl/certs
""",
    "kube-controller-manager.yaml": """\
metadata:
  labels:
    tier: null
spec:
  containers:
  - name: kube-controller-manager
    resources:
      $patch: replace
      limits:
        cpu: "1"
""",
    "kube-scheduler.yaml": """\
spec:
  containers:
  - name: kube-scheduler
    volumeMounts:
    - mountPath: /etc/kubernetes/scheduler.conf
      name: kubeconfig
      readOnly: true
    - $patch: replace
""",
    "etcd.yaml": """\
spec:
  volumes:
  - name: etcd-data
    $retainKeys: [name, emptyDir]
    emptyDir: {}
""",
    "kubeletconfiguration.yaml": """\
authentication:
  webhook:
    cacheTTL: 1m0s
  anonymous: null
clusterDNS: [10.96.0.53]
""",
}
PATCH_SETS = {"patches": PATCH_FILES, "patches-directives": DIRECTIVE_FILES}


def write_patches(directory, variant: str = "patches") -> None:
    from pathlib import Path

    for name, text in PATCH_SETS[variant].items():
        path = Path(directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _patches(docs: list[dict]) -> None:
    docs[0]["patches"] = {"directory": PATCHES_DIR}


PATCHES_DIR = "@PATCHES_DIR@"  # replaced by the judge with the directory it wrote

VARIANTS = {
    "example": None,
    "extras": _extras,
    "external-etcd": _external_etcd,
    "dual-stack": _dual_stack,
    "ecdsa-validity": _ecdsa,
    "etcd-image": _etcd_image,
    "image-repository": _image_repository,
    "patches": _patches,
    "patches-directives": lambda docs: (_extras(docs), _patches(docs)),
}


def config(minor: int, variant: str, patches_dir: str = "") -> str:
    docs = copy.deepcopy(_example())
    docs[1]["kubernetesVersion"] = images.KUBEADM_VERSIONS[minor]
    if VARIANTS[variant]:
        VARIANTS[variant](docs)
    text = yaml.safe_dump_all(docs, sort_keys=False)
    return text.replace(PATCHES_DIR, patches_dir) if patches_dir else text
