"""What a join knows about the cluster before it plans (kubeadm's ``JoinData``), and etcd members.

Discovery (:mod:`tasks.discovery`) talks to the API server and fills a :class:`JoinData`; the
join phases only read it from ``ctx.join_data``, so planning stays pure and testable offline.
The etcd helpers turn ``etcdctl member list -w json`` output and the etcd mirror Pods into the
``--initial-cluster`` list kubeadm would write (reference §9.4, §9.5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..core import constants as K
from ..core.errors import KubefabError
from ..core.secrets import Secret


@dataclass(frozen=True)
class EtcdMember:
    """One etcd member as ``etcdctl member list -w json`` reports it."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    @property
    def hex_id(self) -> str:
        return format(self.id, "x")


@dataclass(frozen=True)
class JoinData:
    """The cluster as a joining node sees it (filled by discovery, read by the join phases).

    :param server: the control-plane URL from inside cluster-info (reference §7.2 step 7).
    :param ca_pem: the cluster CA bundle (verified against the pins unless unsafe-skip).
    :param tls_bootstrap_token: the token the kubelet bootstraps with (``bootstrap-kubelet.conf``).
    :param cluster_name: ``clusterName`` from ``kubeadm-config`` (the kubeconfig cluster name).
    :param cluster_configuration: the ``ClusterConfiguration`` YAML of ``kubeadm-config``.
    :param kubelet_config: the ``kubelet`` key of ``kubelet-config``, byte for byte.
    :param kube_proxy_config: the ``config.conf`` of ``kube-proxy`` (optional in kubeadm).
    :param shared_certs: decrypted ``kubeadm-certs`` (relative pki path -> bytes), or None.
    :param etcd_members: the existing etcd members (control-plane joins with local etcd).
    :param etcd_endpoints: etcd client URLs from the etcd mirror Pods' annotation.
    :param source: ``token``, ``file`` or ``state`` (where the CA came from).
    """

    server: str
    ca_pem: bytes
    tls_bootstrap_token: Secret | None = None
    cluster_name: str = K.DEFAULT_CLUSTER_NAME
    cluster_configuration: str = ""
    kubelet_config: bytes | None = None
    kube_proxy_config: str | None = None
    # private keys inside: never part of repr()
    shared_certs: Mapping[str, bytes] | None = field(default=None, repr=False)
    etcd_members: tuple[EtcdMember, ...] | None = None
    etcd_endpoints: tuple[str, ...] = ()
    source: str = "token"

    @property
    def control_plane_endpoint(self) -> str:
        """``controlPlaneEndpoint`` of the uploaded ClusterConfiguration (``""`` when unset)."""
        from ..core.errors import ConfigError
        from ..core.yamlload import load_document

        try:
            doc = load_document(self.cluster_configuration or "", source="kubeadm-config ConfigMap") or {}
        except ConfigError:
            return ""
        return str(doc.get("controlPlaneEndpoint") or "") if isinstance(doc, dict) else ""


def parse_member_list(text: str | bytes) -> tuple[EtcdMember, ...]:
    """Members from ``etcdctl member list -w json`` (IDs are decimal uint64 in that JSON).

    :raises KubefabError: when the text is not that JSON.
    """
    try:
        doc = json.loads(text)
        members = doc.get("members") or []
        return tuple(EtcdMember(id=int(m["ID"]), name=str(m.get("name") or ""),
                                peer_urls=tuple(m.get("peerURLs") or ()),
                                client_urls=tuple(m.get("clientURLs") or ()),
                                is_learner=bool(m.get("isLearner", False)))
                     for m in members)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise KubefabError(f"cannot read the etcd member list ({exc.__class__.__name__})", phase="check-etcd",
                           fix="run 'ETCDCTL_API=3 etcdctl ... member list -w json' on a control-plane host "
                               "and check that etcd answers") from None


def peer_url(advertise_address: str) -> str:
    """``https://<adv>:2380`` (IPv6 in brackets), the new member's peer URL (reference §9.5)."""
    from ..core.endpoints import join_host_port

    return "https://" + join_host_port(advertise_address, K.ETCD_PEER_PORT)


def client_url(advertise_address: str) -> str:
    from ..core.endpoints import join_host_port

    return "https://" + join_host_port(advertise_address, K.ETCD_CLIENT_PORT)


def initial_cluster(members: Iterable[EtcdMember], node_name: str, new_peer_url: str) -> list[tuple[str, str]]:
    """``--initial-cluster`` pairs as kubeadm builds them from the member-add answer (§9.5 step 4).

    The new member appears as ``<node>=<peerURL>``; the others as ``name=firstPeerURL``, and a
    member without a name (a learner that never started) under its hex ID. When the peer URL is
    already a member (a re-run), that entry is the new node, as kubeadm reuses the list.
    """
    pairs: list[tuple[str, str]] = []
    found = False
    for m in members:
        if new_peer_url in m.peer_urls:
            pairs.append((node_name, new_peer_url))
            found = True
        elif m.peer_urls:
            pairs.append((m.name or m.hex_id, m.peer_urls[0]))
    if not found:
        pairs.append((node_name, new_peer_url))
    return pairs


def etcd_endpoints_from_pods(pod_list: Mapping[str, Any]) -> tuple[str, ...]:
    """Client URLs from the etcd mirror Pods (``component=etcd,tier=control-plane``, §9.4).

    :raises KubefabError: when no Pod is listed or one lacks the annotation (kubeadm retries then
        gives up with the same condition).
    """
    urls: list[str] = []
    missing: list[str] = []
    for pod in pod_list.get("items") or []:
        meta = pod.get("metadata") or {}
        value = (meta.get("annotations") or {}).get(K.ETCD_ADVERTISE_CLIENT_URLS_ANNOTATION)
        if not value:
            missing.append(meta.get("name", "?"))
            continue
        urls.extend(u for u in value.split(",") if u and u not in urls)
    if missing or not urls:
        raise KubefabError(
            "cannot find the etcd endpoints: " + (f"etcd Pods without the {K.ETCD_ADVERTISE_CLIENT_URLS_ANNOTATION} "
                                                  f"annotation: {', '.join(missing)}" if missing
                                                  else "no etcd mirror Pod in kube-system"),
            phase="check-etcd",
            fix="check that the kubelet on every control plane runs etcd and has created its mirror Pod "
                "(kubectl -n kube-system get pods -l component=etcd)")
    return tuple(urls)
