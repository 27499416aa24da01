"""The API-side phases of ``kubeadm init`` (reference §5).

- ``wait-control-plane``: kubelet healthz on the host, then the API server's /readyz (and, as
  with WaitForAllControlPlaneComponents, the controller-manager and scheduler).
- ``upload-config``: ``kubeadm-config`` (ClusterConfiguration, v1beta4) and ``kubelet-config``
  with their RBAC; also the ``kubeadm:cluster-admins`` ClusterRoleBinding that makes
  admin.conf an administrator (kubeadm creates it as soon as the API answers).
- ``upload-certs``: ``kubeadm-certs`` encrypted with the certificate key, owned by a 2-hour
  token Secret (only with ``--upload-certs``).
- ``mark-control-plane``: node labels and taints.
- ``bootstrap-token``: token Secrets, the RBAC that lets tokens join, ``cluster-info``.
- ``addon``: CoreDNS and kube-proxy (each can be disabled in ClusterConfiguration).
- ``show-join-command``: how to use admin.conf and how to join.

All objects are data (:class:`~tasks.core.plan.ApiObject`); ``tasks.api`` applies them.
"""

from __future__ import annotations

import hashlib

from ..core import bootstrap
from ..core import constants as K
from ..core import manifests, versions
from ..core.plan import ApiObject, Plan, SameKubeadmCerts, Wait
from . import rbac
from .workflow import API, OPERATOR, Phase

BOOTSTRAP = K.DEFAULT_BOOTSTRAP_GROUP


def plan_wait_control_plane(ctx) -> Plan:
    t = ctx.timeouts
    plan = Plan("wait-control-plane", ctx.host_name)
    # the three host-local health ports are polled on the host in one round trip, the kubelet
    # first as kubeadm does; the API server's /readyz from the operator machine
    plan.add(Wait("kubelet-healthz", f"http://127.0.0.1:{K.KUBELET_HEALTHZ_PORT}/healthz", t.kubelet_health_check))
    plan.add(Wait("component-healthz", f"https://127.0.0.1:{K.KUBE_CONTROLLER_MANAGER_PORT}/healthz",
                  t.control_plane_component_health_check))
    plan.add(Wait("component-healthz", f"https://127.0.0.1:{K.KUBE_SCHEDULER_PORT}/livez",
                  t.control_plane_component_health_check))
    plan.add(Wait("api-readyz", "/readyz", t.control_plane_component_health_check, on="api"))
    return plan


def plan_upload_config_kubeadm(ctx) -> Plan:
    from ..core import config as kubeadm_config

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
            K.CLUSTER_CONFIGURATION_KEY: kubeadm_config.render_cluster_configuration(ctx.cluster)})),
        ApiObject(rbac.role(name, ns, [rbac.rule(["configmaps"], ["get"], [K.KUBEADM_CONFIG_CONFIGMAP])])),
        ApiObject(rbac.role_binding(name, ns, name, rbac.groups(BOOTSTRAP, K.NODES_GROUP))),
    ])


def plan_upload_config_kubelet(ctx) -> Plan:
    from .kubelet import kubelet_config_bytes

    ns = K.KUBE_SYSTEM_NAMESPACE
    name = "kubeadm:kubelet-config"
    data = {K.KUBELET_CONFIG_KEY: kubelet_config_bytes(ctx).decode()}
    hash_ = manifests.component_config_hash(data)
    plan = Plan("upload-config/kubelet", ctx.host_name, [
        ApiObject(rbac.config_map(K.KUBELET_CONFIG_CONFIGMAP, ns, data,
                                  annotations={K.COMPONENT_CONFIG_HASH_ANNOTATION: hash_})),
        ApiObject(rbac.role(name, ns, [rbac.rule(["configmaps"], ["get"], [K.KUBELET_CONFIG_CONFIGMAP])])),
        ApiObject(rbac.role_binding(name, ns, name, rbac.groups(K.NODES_GROUP, BOOTSTRAP))),
    ])
    if not manifests.uses_instance_config(ctx.cluster):
        # <=1.33 kubeadm records the CRI socket on the Node (NodeLocalCRISocket replaced it)
        plan.add(ApiObject(node_patch(ctx.node_name, annotations={
            K.CRI_SOCKET_ANNOTATION: ctx.node_registration.cri_socket}), strategy="patch"))
    return plan


def node_patch(node_name: str, **meta) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name, **meta}}


def plan_upload_certs(ctx) -> Plan:
    """kubeadm-certs, encrypted with the certificate key, owned by a fresh 2-hour token.

    AES-GCM with a random nonce never gives the same bytes twice, so "unchanged" is decided
    by decrypting the live Secret with the key and comparing the files (and checking that its
    owner token still exists); only then is nothing uploaded.
    """
    plan = Plan("upload-certs", ctx.host_name)
    ns = K.KUBE_SYSTEM_NAMESPACE
    shared = ctx.cluster_pki.shared_files()
    external = ctx.cluster.etcd_external is not None
    owner = bootstrap.certificate_key_owner_token(now=ctx.now)
    owner_secret = bootstrap.token_secret_manifest(owner, now=ctx.now)
    owner_name = owner_secret["metadata"]["name"]
    certs = bootstrap.kubeadm_certs_secret(shared, ctx.certificate_key, owner_name=owner_name,
                                           owner_uid=f"$(uid:Secret/{ns}/{owner_name})", external_etcd=external)
    key = ctx.certificate_key
    wanted = tuple(sorted((rel, hashlib.sha256(data).hexdigest()) for rel, data in shared.items() if data))
    plan.add(ApiObject(certs, strategy="kubeadm-certs", secret=True, related=(owner_secret,),
                       compare=SameKubeadmCerts(key, wanted, external_etcd=external)))
    plan.add(ApiObject(rbac.role("kubeadm:kubeadm-certs", ns,
                                 [rbac.rule(["secrets"], ["get"], [K.KUBEADM_CERTS_SECRET])])))
    plan.add(ApiObject(rbac.role_binding("kubeadm:kubeadm-certs", ns, "kubeadm:kubeadm-certs",
                                         rbac.groups(BOOTSTRAP))))
    return plan


def plan_mark_control_plane(ctx) -> Plan:
    labels = {K.CONTROL_PLANE_LABEL: "", K.EXCLUDE_FROM_LB_LABEL: ""}
    taints = [{"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})}
              for t in ctx.control_plane_taints()]
    obj = node_patch(ctx.node_name, labels=labels)
    obj["spec"] = {"taints": taints}
    return Plan("mark-control-plane", ctx.host_name, [ApiObject(obj, strategy="patch")])


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
                                            rbac.groups(BOOTSTRAP))),
        ApiObject(rbac.cluster_role("kubeadm:get-nodes", [rbac.rule(["nodes"], ["get"])])),
        ApiObject(rbac.cluster_role_binding("kubeadm:get-nodes", "kubeadm:get-nodes", rbac.groups(BOOTSTRAP))),
        ApiObject(rbac.cluster_role_binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient", rbac.groups(BOOTSTRAP))),
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


def plan_addon_coredns(ctx) -> Plan:
    plan = Plan("addon/coredns", ctx.host_name)
    if ctx.cluster.dns.disabled:
        plan.notes.append("CoreDNS disabled in ClusterConfiguration (dns.disabled)")
        return plan
    objects, notes = manifests.patch_coredns_deployment(manifests.render_coredns_objects(ctx.cluster), ctx.patches)
    plan.notes.extend(notes)
    plan.add(*(ApiObject(o) for o in objects))
    return plan


def plan_addon_kube_proxy(ctx) -> Plan:
    plan = Plan("addon/kube-proxy", ctx.host_name)
    if ctx.cluster.proxy_disabled:
        plan.notes.append("kube-proxy disabled in ClusterConfiguration (proxy.disabled)")
        return plan
    plan.add(*(ApiObject(o) for o in manifests.render_kube_proxy_objects(
        ctx.cluster, ctx.config.kube_proxy, control_plane_url=ctx.control_plane_url,
        advertise_address=ctx.advertise_address, proxy_env=ctx.proxy_env)))
    return plan


def plan_show_join_command(ctx) -> Plan:
    """kubeadm's closing words: where admin.conf is, then both forms of the join commands
    (they carry the token on purpose, as kubeadm prints them; --skip-token-print hides it)."""
    from ..core.plan import Message
    from ..core.secrets import Secret

    plan = Plan("show-join-command", ctx.host_name)
    plan.notes.append("print how to use admin.conf and the join commands")
    opts = ctx.options
    reveal = opts.show_secrets or not opts.skip_token_print
    token = ctx.bootstrap_tokens[0].token
    token_text = token.reveal() if reveal else str(token)
    pin = bootstrap.ca_pin(ctx.cluster_pki.ca_cert_pem)
    endpoint = ctx.control_plane_url.removeprefix("https://")
    lines = [
        "",
        "Your Kubernetes control-plane has initialized successfully!",
        "",
        "To start using your cluster from this machine:",
        f"  export KUBECONFIG={ctx.node_state_dir / K.ADMIN_KUBECONFIG}",
        "",
        f"On {ctx.host_name} itself, as kubeadm prints it:",
        "  mkdir -p $HOME/.kube && sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config",
        "",
    ]
    inv = opts.inventory_path
    if opts.upload_certs and "upload-certs" in ctx.selected:
        key = ctx.certificate_key
        if not opts.skip_certificate_key_print:
            plan.add(Message(Secret("[upload-certs] Using certificate key:\n" + key.reveal(), kind="certificate key"),
                             stream="out", reveal=True, description="the certificate key"))
        key_text = key.reveal() if not opts.skip_certificate_key_print else "<certificate key>"
        lines += [
            "You can now join any number of control-plane nodes:",
            f"  fab -H <host> join-control-plane --inventory {inv}",
            f"  kubeadm join {endpoint} --token {token_text} \\",
            f"      --discovery-token-ca-cert-hash {pin} \\",
            f"      --control-plane --certificate-key {key_text}",
            "",
        ]
    lines += [
        "Then you can join any number of worker nodes:",
        f"  fab -H <host> join --inventory {inv}",
        f"  kubeadm join {endpoint} --token {token_text} \\",
        f"      --discovery-token-ca-cert-hash {pin}",
    ]
    text = "\n".join(lines)
    # the text holds a secret only where its flag allows it (the others are placeholders already)
    shown = reveal or (opts.upload_certs and "upload-certs" in ctx.selected and not opts.skip_certificate_key_print)
    plan.add(Message(Secret(text, kind="join command") if shown else text, stream="out", reveal=shown,
                     description="how to use admin.conf and the join commands"))
    return plan


WAIT_CONTROL_PLANE = Phase("wait-control-plane", "Wait for the control plane to start", run=plan_wait_control_plane,
                           where=API, needs=("kubelet", "static-pods"), produces=("api",))
UPLOAD_CONFIG = Phase(
    "upload-config", "Upload the kubeadm and kubelet configuration to a ConfigMap",
    phases=(Phase("kubeadm", "Upload the kubeadm ClusterConfiguration to a ConfigMap", run=plan_upload_config_kubeadm),
            Phase("kubelet", "Upload the kubelet component config to a ConfigMap", run=plan_upload_config_kubelet)),
    where=API, needs=("api",), produces=("cluster-config",),
)
UPLOAD_CERTS = Phase(
    "upload-certs", "Upload certificates to kubeadm-certs", run=plan_upload_certs,
    run_if=lambda ctx: ctx.options.upload_certs, skip_reason="pass --upload-certs to share the CAs with joining control planes",
    where=API, needs=("api",), produces=("kubeadm-certs",),
)
MARK_CONTROL_PLANE = Phase("mark-control-plane", "Mark a node as a control-plane", run=plan_mark_control_plane,
                           where=API, needs=("api",))
BOOTSTRAP_TOKEN = Phase("bootstrap-token", "Generates bootstrap tokens used to join a node to a cluster",
                        run=plan_bootstrap_token, where=API, needs=("api",), produces=("bootstrap-token",))
ADDON = Phase(
    "addon", "Install required addons for passing conformance tests", aliases=("addons",),
    phases=(Phase("coredns", "Install the CoreDNS addon to a Kubernetes cluster", run=plan_addon_coredns),
            Phase("kube-proxy", "Install the kube-proxy addon to a Kubernetes cluster", run=plan_addon_kube_proxy)),
    where=API, needs=("api",),
)
SHOW_JOIN_COMMAND = Phase("show-join-command", "Show the join command for control-plane and worker node",
                          run=plan_show_join_command, where=OPERATOR, needs=("bootstrap-token",))

