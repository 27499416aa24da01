"""``upload-config`` (reference §5.2, §5.4): ``kubeadm-config`` (ClusterConfiguration, v1beta4) and
``kubelet-config`` with their RBAC; also the ``kubeadm:cluster-admins`` ClusterRoleBinding that
makes admin.conf an administrator (kubeadm creates it as soon as the API answers).

All objects are data (:class:`~tasks.core.plan.ApiObject`); ``tasks.api`` applies them."""

from __future__ import annotations

from ..core import constants as K
from ..core.manifests.common import component_config_hash
from ..core.manifests.kubelet import uses_instance_config
from ..core.plan import ApiObject, Plan
from . import rbac
from .rbac import node_patch
from .workflow import API, Phase


def plan_upload_config_kubeadm(ctx) -> Plan:
    from ..core.config.encode import render_cluster_configuration

    ns = K.KUBE_SYSTEM_NAMESPACE
    name = "kubeadm:nodes-kubeadm-config"
    return Plan("upload-config/kubeadm", ctx.host_name, [
        # kubeadm's EnsureAdminClusterRoleBinding: admin.conf (group kubeadm:cluster-admins) has no
        # rights until this binding exists, so it is the first object of the run, created with
        # super-admin.conf (system:masters) when admin.conf is Forbidden
        ApiObject(rbac.cluster_role_binding(K.CLUSTER_ADMINS_GROUP, "cluster-admin",
                                            rbac.groups(K.CLUSTER_ADMINS_GROUP)), strategy="retain",
                  fallback_kubeconfig=K.SUPER_ADMIN_KUBECONFIG),
        ApiObject(rbac.config_map(K.KUBEADM_CONFIG_CONFIGMAP, ns, {
            K.CLUSTER_CONFIGURATION_KEY: render_cluster_configuration(ctx.cluster)})),
        ApiObject(rbac.role(name, ns, [rbac.rule(["configmaps"], ["get"], [K.KUBEADM_CONFIG_CONFIGMAP])])),
        ApiObject(rbac.role_binding(name, ns, name, rbac.groups(K.DEFAULT_BOOTSTRAP_GROUP, K.NODES_GROUP))),
    ])


def plan_upload_config_kubelet(ctx) -> Plan:
    from .kubelet import kubelet_config_bytes

    ns = K.KUBE_SYSTEM_NAMESPACE
    name = "kubeadm:kubelet-config"
    data = {K.KUBELET_CONFIG_KEY: kubelet_config_bytes(ctx).decode()}
    hash_ = component_config_hash(data)
    plan = Plan("upload-config/kubelet", ctx.host_name, [
        ApiObject(rbac.config_map(K.KUBELET_CONFIG_CONFIGMAP, ns, data,
                                  annotations={K.COMPONENT_CONFIG_HASH_ANNOTATION: hash_})),
        ApiObject(rbac.role(name, ns, [rbac.rule(["configmaps"], ["get"], [K.KUBELET_CONFIG_CONFIGMAP])])),
        ApiObject(rbac.role_binding(name, ns, name, rbac.groups(K.NODES_GROUP, K.DEFAULT_BOOTSTRAP_GROUP))),
    ])
    if not uses_instance_config(ctx.cluster):
        # <=1.33 kubeadm records the CRI socket on the Node (NodeLocalCRISocket replaced it)
        plan.add(ApiObject(node_patch(ctx.node_name, annotations={
            K.CRI_SOCKET_ANNOTATION: ctx.node_registration.cri_socket}), strategy="patch"))
    return plan


UPLOAD_CONFIG = Phase(
    "upload-config", "Upload the kubeadm and kubelet configuration to a ConfigMap",
    phases=(Phase("kubeadm", "Upload the kubeadm ClusterConfiguration to a ConfigMap", run=plan_upload_config_kubeadm),
            Phase("kubelet", "Upload the kubelet component config to a ConfigMap", run=plan_upload_config_kubelet)),
    where=API, needs=("api",), produces=("cluster-config",),
)
