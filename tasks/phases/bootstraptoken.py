"""``bootstrap-token`` (reference §5.1, §6): the token Secrets, the RBAC that lets tokens join, and
``cluster-info`` in kube-public."""

from __future__ import annotations

from ..core import bootstrap
from ..core import constants as K
from ..core import versions
from ..core.plan import ApiObject, Plan
from . import rbac
from .workflow import API, Phase


def plan_bootstrap_token(ctx) -> Plan:
    plan = Plan("bootstrap-token", ctx.host_name)
    for token in ctx.bootstrap_tokens:
        plan.add(ApiObject(bootstrap.token_secret_manifest(token, now=ctx.now), strategy="retain", secret=True))
    # merge: the controller manager adds jws-kubeconfig-<id> keys; an update would drop them
    plan.add(*bootstrap_rbac(ctx, cluster_info="merge"))
    return plan


def plan_bootstrap_rbac(ctx) -> Plan:
    """``upgrade apply``'s bootstrap-token phase: the rules again (the new version's), no token,
    and cluster-info only where it is missing (kubeadm's CreateBootstrapConfigMapIfNotExists)."""
    return Plan("bootstrap-token", ctx.host_name, list(bootstrap_rbac(ctx, cluster_info="retain")))


def bootstrap_rbac(ctx, *, cluster_info: str) -> list[ApiObject]:
    """The RBAC that lets bootstrap tokens join and nodes renew, and the public cluster-info."""
    steps = [
        ApiObject(rbac.cluster_role_binding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper",
                                            rbac.groups(K.DEFAULT_BOOTSTRAP_GROUP))),
        ApiObject(rbac.cluster_role("kubeadm:get-nodes", [rbac.rule(["nodes"], ["get"])])),
        ApiObject(rbac.cluster_role_binding("kubeadm:get-nodes", "kubeadm:get-nodes", rbac.groups(K.DEFAULT_BOOTSTRAP_GROUP))),
        ApiObject(rbac.cluster_role_binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient", rbac.groups(K.DEFAULT_BOOTSTRAP_GROUP))),
        ApiObject(rbac.cluster_role_binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", rbac.groups(K.NODES_GROUP))),
    ]
    if versions.kubelet_client_rbac(ctx.cluster.kubernetes_version):
        steps.append(ApiObject(rbac.cluster_role_binding(K.KUBELET_API_ADMIN_BINDING, K.KUBELET_API_ADMIN_ROLE,
                                                         [rbac.subject("User", K.APISERVER_KUBELET_CLIENT_CN)])))
    from ..core import kubeconfig as kc

    info = kc.cluster_info_kubeconfig(ctx.control_plane_url, ctx.cluster_pki.ca_cert_pem,
                                      preferences=kc.writes_preferences(ctx.cluster.minor))
    steps.append(ApiObject(rbac.config_map(K.CLUSTER_INFO_CONFIGMAP, K.KUBE_PUBLIC_NAMESPACE, {"kubeconfig": info}),
                           strategy=cluster_info))
    name = "kubeadm:bootstrap-signer-clusterinfo"
    steps.append(ApiObject(rbac.role(name, K.KUBE_PUBLIC_NAMESPACE,
                                     [rbac.rule(["configmaps"], ["get"], [K.CLUSTER_INFO_CONFIGMAP])])))
    steps.append(ApiObject(rbac.role_binding(name, K.KUBE_PUBLIC_NAMESPACE, name,
                                             [rbac.subject("User", "system:anonymous")])))
    return steps


BOOTSTRAP_TOKEN = Phase("bootstrap-token", "Generates bootstrap tokens used to join a node to a cluster",
                        run=plan_bootstrap_token, where=API, needs=("api",), produces=("bootstrap-token",))
