"""The ``join`` and ``join-control-plane`` workflows: kubeadm join's phases (reference §9).

Phases, in kubeadm's order (one table; the control-plane ones run only on a control-plane join,
as kubeadm's ``RunIf``):

- ``preflight``: the join node checks (§10.2) with kubeadm's names, plus the init checks in
  "secondary control plane" mode on a control-plane join; a control-plane join needs a stable
  ``controlPlaneEndpoint``.
- ``control-plane-prepare``: ``download-certs`` (the shared CAs and service-account key, from
  decrypted ``kubeadm-certs`` or the operator's state dir; keys 0600, the rest 0644 as kubeadm's
  download), ``certs`` (this node's leaves, signed by those CAs), ``kubeconfig`` (admin,
  controller-manager, scheduler), ``control-plane`` (three static Pod manifests).
- ``check-etcd``: ``etcdctl endpoint health`` of every voting member, run on the joining host with its own
  ``etcd/healthcheck-client`` certificate, the identity kubeadm's etcd client uses (§9.4).
- ``kubelet-start``: ``ca.crt`` (workers), ``bootstrap-kubelet.conf`` (0600), the kubelet
  config from the cluster's ``kubelet-config`` bytes, flags env, start; workers then wait for
  the TLS bootstrap to produce ``kubelet.conf`` and remove ``bootstrap-kubelet.conf``.
- ``control-plane-join``: ``etcd`` (member added as a learner with etcdctl on the joining host,
  local manifest with ``--initial-cluster-state=existing``, health wait, promotion), the hidden
  ``kubelet-wait-bootstrap`` (ControlPlaneKubeletLocalMode: the kubelet bootstraps against its
  own API server, which needs the local etcd member first), ``mark-control-plane``.
- ``wait-control-plane``: the local control-plane components are healthy.

Every phase reads the cluster through ``ctx.join_data`` (a
:class:`~tasks.phases.joindata.JoinData`), filled by :mod:`tasks.discovery` before planning,
or built from the operator's state dir when it holds the cluster's PKI and token.
"""

from __future__ import annotations

import posixpath
import shlex

from ..core import bootstrap
from ..core import constants as K
from ..core import kubeconfig as kc
from ..core import manifests, pki
from ..core.errors import ConfigError, KubefabError, PKIError
from ..core.endpoints import loopback_for
from ..core.plan import Command, FileRemove, FileWrite, Plan, Wait
from ..core.poll import poll_script
from ..core.secrets import Secret
from ..core.yamlload import load_document
from .certs import file_steps, spec_files
from .controlplane import manifest_path, manifest_step
from .joindata import JoinData, client_url, initial_cluster, peer_url
from .kubeconfig import node_kubeconfigs
from .kubelet import kubelet_files, kubelet_patch_notes, kubelet_restart_steps
from .preflight import Finding, check_name_for_path, control_plane_checks, evaluate, node_checks
from .workflow import API, OPERATOR, Phase, Workflow

JOIN_CP_KUBECONFIGS = (K.ADMIN_KUBECONFIG, K.CONTROLLER_MANAGER_KUBECONFIG, K.SCHEDULER_KUBECONFIG)
ETCDCTL = "etcdctl"


# --- join material ------------------------------------------------------------------------------
def join_data_from_state(ctx) -> JoinData | None:
    """Join material from the operator's state dir: its ``pki/ca.crt`` and bootstrap token.

    Used when discovery did not run (offline plans, or an operator who holds the cluster): the
    server is the configured discovery endpoint, else the control-plane endpoint.
    """
    ca_pem = ctx.state_file(ctx.state.pki_dir / "ca.crt")
    if ca_pem is None:
        return None
    join = ctx.config.join
    discovery = join.discovery if join is not None else None
    token = (discovery.tls_bootstrap_token or discovery.token) if discovery is not None else None
    token = token or ctx._join_material().token()
    server = ctx.control_plane_url
    if discovery is not None and discovery.api_server_endpoint:
        server = "https://" + discovery.api_server_endpoint.removeprefix("https://")
    return JoinData(server=server, ca_pem=ca_pem, tls_bootstrap_token=token,
                    cluster_name=ctx.cluster.cluster_name, source="state")


def join_data(ctx) -> JoinData:
    """``ctx.join_data``, else the state dir's material (cached on the context).

    :raises KubefabError: when neither exists (the join cannot know the cluster's CA).
    """
    return ctx.cluster_join_data


def state_join_data(ctx) -> JoinData:
    """The state dir's join material, for a context without discovery.

    :raises KubefabError: when the state dir holds no CA (the join cannot know the cluster's CA).
    """
    found = join_data_from_state(ctx)
    if found is None:
        raise KubefabError(
            "nothing is known about the cluster to join: discovery has not run and the state dir "
            f"{ctx.state.root} holds no pki/ca.crt",
            host=ctx.host_name,
            fix="pass the join flags (--token, --discovery-token-ca-cert-hash and the API endpoint) so "
                "discovery can run, or use the state dir of the cluster's init (--state-dir)")
    return found


def _state_holds_pki(ctx) -> bool:
    return all(ctx.state_file(ctx.state.pki_dir / f) is not None for f in ("ca.crt", "front-proxy-ca.crt", "sa.key"))


def join_cluster_pki(ctx) -> pki.ClusterPKI:
    """The shared PKI a control-plane join signs its leaves with (``ctx.cluster_pki`` of a join).

    The operator's state dir wins when it holds the PKI (no secret crosses the network); else
    the decrypted ``kubeadm-certs``. The state dir is never asked to *create* a PKI here: a new
    CA on a join would split the cluster.

    :raises PKIError: when neither source exists, or the state's CA is not the discovered one.
    """
    jd = join_data(ctx)
    if _state_holds_pki(ctx):
        result = ctx.state_cluster_pki()  # reuses the files; nothing is generated when they exist
        if jd.source != "state" and not bootstrap.pin_matches(jd.ca_pem, [bootstrap.ca_pin(result.ca_cert_pem)]):
            raise PKIError(f"the CA in the state dir {ctx.state.pki_dir} is not the CA of the cluster being joined",
                           host=ctx.host_name, phase="control-plane-prepare/download-certs",
                           fix="use the state dir of this cluster (--state-dir), or join with --certificate-key")
    elif jd.shared_certs is not None:
        result = pki.load_cluster_pki_from_files(dict(jd.shared_certs),
                                                 encryption_algorithm=ctx.cluster.encryption_algorithm, now=ctx.now)
    else:
        raise PKIError(
            "a control-plane join needs the cluster's CAs and service-account key, and neither the state dir "
            "nor kubeadm-certs provided them", host=ctx.host_name, phase="control-plane-prepare/download-certs",
            fix='pass the certificate key printed by the init (--certificate-key), after '
                '"fab -H <init host> init --only upload-certs --upload-certs" if kubeadm-certs expired')
    return result


def _require_endpoint(ctx) -> None:
    """kubeadm refuses a control-plane join without a stable controlPlaneEndpoint (§9.2)."""
    jd = ctx.join_data
    endpoint = (jd.control_plane_endpoint if jd is not None and jd.cluster_configuration
                else ctx.cluster.control_plane_endpoint)
    if not endpoint:
        raise ConfigError(
            "unable to add a new control plane instance to a cluster that doesn't have a stable "
            "controlPlaneEndpoint address", host=ctx.host_name, phase="preflight",
            fix="set controlPlaneEndpoint (a load balancer or DNS name in front of all API servers) in the "
                "ClusterConfiguration before init; for an existing cluster update kubeadm-config, the API "
                "server certificates and the kubeconfigs first")


def _prepare(ctx) -> None:
    """What every control-plane join phase relies on, checked first so the error is clear:
    the cluster's PKI and, with local etcd, the ``--initial-cluster`` list (etcd manifest)."""
    if not ctx.is_control_plane:
        return
    ctx.cluster_pki
    ctx.etcd_initial_cluster


def etcd_initial_cluster(ctx) -> list[tuple[str, str]] | None:
    """``--initial-cluster`` pairs for a control-plane join with local etcd (None otherwise).

    :raises KubefabError: when the existing members are unknown.
    """
    if ctx.config.join is None or not ctx.is_control_plane or ctx.cluster.etcd_local is None:
        return None
    members = join_data(ctx).etcd_members
    if members is None:
        raise KubefabError(
            "the existing etcd members are unknown, so the etcd manifest of this control plane cannot be "
            "written", host=ctx.host_name,
            fix="let discovery list the members (it runs 'etcdctl member list' on a control plane), or run "
                "online instead of --offline")
    return initial_cluster(members, ctx.node_name, peer_url(ctx.advertise_address))


def _is_cp(ctx) -> bool:
    return ctx.is_control_plane


def _local_etcd_cp(ctx) -> bool:
    return ctx.is_control_plane and ctx.cluster.etcd_local is not None and ctx.cluster.etcd_external is None


# --- preflight ----------------------------------------------------------------------------------
def join_checks(ctx) -> list[Finding]:
    """The join node checks of kubeadm (§10.2) beyond the common node checks."""
    from .preflight import _path

    found: list[Finding] = []
    from .preflight import same_cluster

    if same_cluster(ctx):
        return found  # this host already belongs to this cluster: a re-run converges
    paths = [posixpath.join(K.KUBERNETES_DIR, K.KUBELET_KUBECONFIG),
             posixpath.join(K.KUBERNETES_DIR, K.BOOTSTRAP_KUBELET_KUBECONFIG)]
    if not ctx.is_control_plane:
        paths.append(ctx.config.join.ca_cert_path)
    for path in paths:
        if _path(ctx.facts, path).get("exists"):
            found.append(Finding(check_name_for_path("FileAvailable", path), f"{path} already exists", True))
    return found


def plan_preflight_join(ctx) -> Plan:
    if ctx.is_control_plane:
        _require_endpoint(ctx)
    if ctx.facts is None:
        return Plan("preflight", ctx.host_name, notes=["offline: host checks need facts and were not run"])
    # the init checks' re-run waiver compares the host's ca.crt with the cluster CA; on a join
    # that CA comes from discovery (never from a freshly created state-dir PKI): ctx.same_cluster
    join_data(ctx)
    findings = node_checks(ctx, worker=not ctx.is_control_plane) + join_checks(ctx)
    if ctx.is_control_plane:
        findings += control_plane_checks(ctx)
    return evaluate(ctx, findings)


# --- control-plane-prepare -------------------------------------------------------------------------
def _external_etcd_target(ctx, name: str) -> str:
    ext = ctx.cluster.etcd_external
    return {"external-etcd-ca.crt": ext.ca_file, "external-etcd.crt": ext.cert_file,
            "external-etcd.key": ext.key_file}.get(name, "")


def plan_download_certs(ctx) -> Plan:
    """The shared files on the host, with the modes of kubeadm's download (§8.4)."""
    _prepare(ctx)
    plan = Plan("control-plane-prepare/download-certs", ctx.host_name)
    jd = join_data(ctx)
    if _state_holds_pki(ctx):
        files = ctx.cluster_pki.shared_files()
        plan.notes.append("the shared CAs and service-account key come from the operator's state dir")
    else:
        files = dict(jd.shared_certs or {})
        plan.notes.append("the shared CAs and service-account key come from the kubeadm-certs Secret")
    for rel, data in sorted(files.items()):
        if not data:
            continue
        path = _external_etcd_target(ctx, rel) if rel.startswith("external-etcd") else posixpath.join(ctx.pki_dir, rel)
        if not path:
            continue
        mode = bootstrap.downloaded_file_mode(data)
        content = Secret(data, kind="private key") if mode == 0o600 else data
        plan.add(FileWrite(path, content, mode=mode))
    return plan


def _leaf_files() -> set[str]:
    return {f for s in pki.LEAF_SPECS for f in spec_files(s)}


def plan_join_certs(ctx) -> Plan:
    """This node's leaf certificates (kubeadm regenerates every leaf for the joining node)."""
    _prepare(ctx)
    plan = Plan("control-plane-prepare/certs", ctx.host_name)
    plan.add(*file_steps(ctx, _leaf_files()))
    return plan


def plan_join_kubeconfig(ctx) -> Plan:
    """admin.conf, controller-manager.conf and scheduler.conf (no kubelet.conf, no super-admin)."""
    _prepare(ctx)
    plan = Plan("control-plane-prepare/kubeconfig", ctx.host_name)
    files = node_kubeconfigs(ctx)
    for name in JOIN_CP_KUBECONFIGS:
        plan.add(FileWrite(posixpath.join(K.KUBERNETES_DIR, name), Secret(files[name], kind="kubeconfig"), mode=0o600))
    return plan


def plan_join_control_plane_manifests(ctx) -> Plan:
    _prepare(ctx)
    plan = Plan("control-plane-prepare/control-plane", ctx.host_name)
    plan.add(*(manifest_step(ctx, c) for c in K.CONTROL_PLANE_COMPONENTS))
    plan.notes.extend(n for c in K.CONTROL_PLANE_COMPONENTS for n in ctx.patch_notes(c))
    return plan


# --- etcd through etcdctl on the joining host ----------------------------------------------------
def etcdctl_argv(pki_dir: str, endpoints: list[str] | tuple[str, ...], *args: str) -> list[str]:
    """``etcdctl`` with the healthcheck-client identity kubeadm's etcd client uses (§9.4).

    Also what the command layer runs on an existing control plane before planning a control-plane
    join: ``etcdctl_argv(pki, endpoints, "member", "list", "-w", "json")``, parsed by
    :func:`tasks.phases.joindata.parse_member_list`.
    """
    etcd_dir = posixpath.join(pki_dir, "etcd")
    return ["env", "ETCDCTL_API=3", ETCDCTL, "--endpoints=" + ",".join(endpoints),
            "--cacert=" + posixpath.join(etcd_dir, "ca.crt"),
            "--cert=" + posixpath.join(etcd_dir, "healthcheck-client.crt"),
            "--key=" + posixpath.join(etcd_dir, "healthcheck-client.key"),
            "--dial-timeout=5s", "--command-timeout=30s", *args]


def etcdctl_prefix(ctx, endpoints: list[str] | tuple[str, ...]) -> list[str]:
    return etcdctl_argv(ctx.pki_dir, endpoints)


def existing_etcd_endpoints(ctx) -> list[str]:
    """Client URLs of the running members: the mirror Pods' annotation, else the member list."""
    jd = join_data(ctx)
    own = client_url(ctx.advertise_address)
    urls = [u for u in jd.etcd_endpoints if u != own]
    if not urls and jd.etcd_members:
        urls = [u for m in jd.etcd_members if not m.is_learner for u in m.client_urls if u != own]
    if not urls:
        raise KubefabError("no etcd client endpoint of the existing control planes is known", host=ctx.host_name,
                           phase="check-etcd",
                           fix="check that the etcd mirror Pods carry the "
                               f"{K.ETCD_ADVERTISE_CLIENT_URLS_ANNOTATION} annotation (re-run the control-plane "
                               "join discovery online)")
    return urls


def retry_script(body: str, timeout_s: int, ok_patterns: tuple[str, ...] = ()) -> str:
    """Retry ``body`` every second until it succeeds or ``timeout_s`` passes (kubeadm retries
    every etcd call for timeouts.etcdAPICall); output matching ``ok_patterns`` counts as done."""
    return poll_script(body, timeout_s, ok_patterns=ok_patterns)


def check_etcd_command(ctx) -> Command:
    """Every voting member healthy (kubeadm's check-etcd: ``endpoint health --cluster``), the
    learners left out: a learner a failed join left behind is removed by the member add that
    follows, and must not block the join before it gets there."""
    ec = shlex.join(etcdctl_prefix(ctx, existing_etcd_endpoints(ctx)))
    voting = shlex.join(etcdctl_prefix(ctx, ["KF-URL"])).replace("--endpoints=KF-URL", '--endpoints="$kf_urls"')
    timeout = int(ctx.timeouts.etcd_api_call.total_seconds())
    # simple output: ID, status, name, peer URLs, client URLs, is learner
    body = (f"kf_urls=$({ec} member list | awk -F', ' '$6 == \"false\" && $5 != \"\" {{print $5}}' "
            "| paste -sd, -) || exit 1; [ -n \"$kf_urls\" ] || { echo 'no voting etcd member'; exit 1; }; "
            f"{voting} endpoint health")
    return Command(("sh", "-c", retry_script(body, timeout)), "check that every voting etcd member is healthy")


def member_add_command(ctx) -> Command:
    """Add this node as a learner unless its peer URL already is a member (re-runs converge).

    Learners a failed control-plane join left behind are removed first (etcd allows one
    learner, so a stale one blocks every later join; a learner never votes, so removing it
    cannot cost the quorum): this node's own learner when its data directory is gone (the
    host came back empty: that learner can never start again), another node's learner that
    never started, and another node's started learner whose client URL does not answer.
    """
    q = shlex.quote
    ec = shlex.join(etcdctl_prefix(ctx, existing_etcd_endpoints(ctx)))
    # the same etcdctl, asking one learner's own endpoint ($kf_url) instead
    one = shlex.join(etcdctl_prefix(ctx, ["KF-URL"])).replace("--endpoints=KF-URL", '--endpoints="$kf_url"')
    peer = peer_url(ctx.advertise_address)
    data_dir = ctx.cluster.etcd_local.data_dir
    # simple output: ID, status, name, peer URLs, client URLs, is learner
    body = (
        f"kf_ml=$({ec} member list) || exit 1; "
        f"kf_mine=$(printf '%s\\n' \"$kf_ml\" | awk -F', ' -v p={q(peer)} 'index($4, p) {{print $1, $6}}'); "
        "if [ -n \"$kf_mine\" ]; then "
        f"  if [ \"${{kf_mine#* }}\" = true ] && [ ! -d {q(data_dir + '/member')} ]; then "
        f"    echo \"removing this node's stale etcd learner ${{kf_mine%% *}} ({peer}): its data is gone\"; "
        f"    {ec} member remove \"${{kf_mine%% *}}\" || exit 1; "
        "  else echo 'already a member'; exit 0; fi; "
        "fi; "
        f"for kf_l in $(printf '%s\\n' \"$kf_ml\" | awk -F', ' -v p={q(peer)} "
        "'$6 == \"true\" && !index($4, p) {split($5, u, \",\"); print $1 \"|\" $2 \"|\" u[1]}'); do "
        "  kf_id=${kf_l%%|*}; kf_url=${kf_l##*|}; "
        "  case $kf_l in *'|unstarted|'*) kf_why='it never started';; "
        f"    *) if [ -n \"$kf_url\" ] && {one} endpoint health >/dev/null 2>&1; then continue; fi; "
        "       kf_why=\"its endpoint $kf_url does not answer\";; esac; "
        "  echo \"removing stale etcd learner $kf_id: $kf_why (a failed control-plane join)\"; "
        f"  {ec} member remove \"$kf_id\" || exit 1; "
        "done; "
        f"{ec} member add {q(ctx.node_name)} --peer-urls={q(peer)} --learner"
    )
    timeout = int(ctx.timeouts.etcd_api_call.total_seconds())
    return Command(("sh", "-c", retry_script(body, timeout)), f"add etcd member {ctx.node_name} ({peer}) as a learner")


def member_promote_command(ctx) -> Command:
    """Promote the learner once caught up; "not a learner" means already promoted (§9.5 step 6)."""
    endpoints = existing_etcd_endpoints(ctx) + [client_url(ctx.advertise_address)]
    ec = shlex.join(etcdctl_prefix(ctx, endpoints))
    peer = peer_url(ctx.advertise_address)
    body = (f"id=$({ec} member list | awk -F', ' -v p={shlex.quote(peer)} 'index($4, p) {{print $1}}'); "
            f"[ -n \"$id\" ] || {{ echo 'no member with peer URL {peer}'; false; }} && {ec} member promote \"$id\"")
    timeout = int(ctx.timeouts.etcd_api_call.total_seconds())
    return Command(("sh", "-c", retry_script(body, timeout, ("can only promote a learner member",
                                                                "is not a learner"))),
                   f"promote etcd member {ctx.node_name} once it has caught up")


def _local_host(ctx) -> str:
    return loopback_for(ctx.advertise_address)


def plan_check_etcd(ctx) -> Plan:
    _prepare(ctx)
    return Plan("check-etcd", ctx.host_name, [check_etcd_command(ctx)])


def plan_etcd_join(ctx) -> Plan:
    """Learner add, local manifest with the member list, health wait, promotion (§9.5)."""
    _prepare(ctx)
    plan = Plan("control-plane-join/etcd", ctx.host_name)
    data_dir = ctx.cluster.etcd_local.data_dir
    plan.add(Command(("install", "-d", "-m", "0700", data_dir), "etcd data directory", creates=data_dir))
    plan.add(member_add_command(ctx))
    plan.add(manifest_step(ctx, K.ETCD))
    plan.notes.extend(ctx.patch_notes(K.ETCD))
    plan.add(Wait("etcd-healthz", f"http://{_local_host(ctx)}:{K.ETCD_METRICS_PORT}/health",
                  ctx.timeouts.etcd_api_call))
    plan.add(member_promote_command(ctx))
    return plan


# --- kubelet-start ---------------------------------------------------------------------------------
def _kubelet_local_mode(ctx) -> bool:
    return ctx.is_control_plane and ctx.version.kubelet_local_mode


def join_kubelet_config(ctx) -> bytes | None:
    """config.yaml from the cluster's ``kubelet-config`` bytes; on 1.34+ with the node's CRI
    socket patched in, as kubeadm applies instance-config.yaml (§4.2), and resolvConf where
    systemd-resolved runs. None = not discovered."""
    raw = join_data(ctx).kubelet_config
    if raw is None:
        return None
    instance = manifests.uses_instance_config(ctx.cluster)
    patched = ctx.patches is not None and bool(ctx.patches.for_target("kubeletconfiguration"))
    if not instance and not ctx.fact("systemd_resolved_active") and not patched:
        return raw
    try:
        doc = load_document(raw.decode("utf-8") if isinstance(raw, bytes) else raw, source="kubelet-config ConfigMap")
    except (ConfigError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        raise ConfigError("the kubelet-config ConfigMap does not hold a KubeletConfiguration", host=ctx.host_name,
                          phase="kubelet-start", fix='re-run "fab -H <init host> init --only upload-config/kubelet"')
    # kubeadm's order: its own changes, the patch directory's patches, then the instance config
    manifests.resolver_mutation(doc, bool(ctx.fact("systemd_resolved_active")))
    doc, _ = manifests.patch_kubelet_config(doc, ctx.patches)
    if instance:
        doc["containerRuntimeEndpoint"] = ctx.node_registration.cri_socket
    from ..core.render import render_template

    return render_template("kubelet/config.yaml.j2", config=doc)


def bootstrap_kubelet_conf(ctx) -> Secret:
    jd = join_data(ctx)
    if not jd.tls_bootstrap_token:
        raise ConfigError("no TLS bootstrap token for the kubelet", host=ctx.host_name, phase="kubelet-start",
                          fix="pass --token (or discovery.tlsBootstrapToken in the JoinConfiguration)")
    # ControlPlaneKubeletLocalMode: a joining control plane's kubelet bootstraps against its own API server
    server = ctx.local_api_url if _kubelet_local_mode(ctx) else jd.server
    return Secret(kc.bootstrap_kubeconfig(server, jd.ca_pem, jd.tls_bootstrap_token, cluster_name=jd.cluster_name,
                                          preferences=kc.writes_preferences(ctx.cluster.minor)),
                  kind="bootstrap kubeconfig")


def tls_bootstrap_steps(ctx) -> list:
    kubelet_conf = posixpath.join(K.KUBERNETES_DIR, K.KUBELET_KUBECONFIG)
    return [Wait("kubelet-tls-bootstrap", kubelet_conf, ctx.timeouts.tls_bootstrap),
            FileRemove(posixpath.join(K.KUBERNETES_DIR, K.BOOTSTRAP_KUBELET_KUBECONFIG),
                       reason="kubeadm deletes it once kubelet.conf works")]


def wait_file_script(path: str, timeout_s: int) -> str:
    """The host-side poll for a ``kubelet-tls-bootstrap`` Wait: the file exists and is not empty
    (kubeadm polls every second for timeouts.tlsBootstrap). For the applier of Wait steps."""
    q = shlex.quote(path)
    return poll_script(f"[ -s {q} ] && echo ok || {{ echo {shlex.quote(f'last answer: {path} not written')}; false; }}",
                       int(timeout_s), on_timeout='echo "$out"')


def plan_join_kubelet_start(ctx) -> Plan:
    _prepare(ctx)
    plan = Plan("kubelet-start", ctx.host_name)
    jd = join_data(ctx)
    if not ctx.is_control_plane:
        # a control plane got ca.crt from download-certs; a worker gets the discovered CA (§4.4)
        plan.add(FileWrite(ctx.config.join.ca_cert_path, jd.ca_pem, mode=0o644))
    plan.add(FileWrite(posixpath.join(K.KUBERNETES_DIR, K.BOOTSTRAP_KUBELET_KUBECONFIG), bootstrap_kubelet_conf(ctx),
                       mode=0o600))
    files = kubelet_files(ctx, worker_join=not ctx.is_control_plane)
    plan.notes.extend(kubelet_patch_notes(ctx))
    config = join_kubelet_config(ctx)
    if config is not None:
        files = [FileWrite(f.path, config, mode=f.mode, dir_mode=f.dir_mode) if f.path == K.KUBELET_CONFIG_FILE
                 else f for f in files]
    else:
        plan.notes.append("kubelet-config not read from the cluster: config.yaml rendered from the local config")
    plan.add(*files)
    plan.add(*kubelet_restart_steps(ctx))
    plan.add(Wait("kubelet-healthz", f"http://127.0.0.1:{K.KUBELET_HEALTHZ_PORT}/healthz",
                  ctx.timeouts.kubelet_health_check))
    if _kubelet_local_mode(ctx):
        plan.notes.append("the TLS bootstrap completes once the local etcd member and API server run "
                          "(control-plane-join/kubelet-wait-bootstrap)")
    else:
        plan.add(*tls_bootstrap_steps(ctx))
        if not manifests.uses_instance_config(ctx.cluster):
            plan.notes.append("kubeadm (<=1.33) annotates the Node with its CRI socket using the new kubelet.conf")
    return plan


def plan_kubelet_wait_bootstrap(ctx) -> Plan:
    plan = Plan("control-plane-join/kubelet-wait-bootstrap", ctx.host_name)
    if not _kubelet_local_mode(ctx):
        plan.notes.append("the TLS bootstrap was awaited in kubelet-start")
        return plan
    plan.add(*tls_bootstrap_steps(ctx))
    return plan


# --- API phases reused from init ----------------------------------------------------------------------
def plan_join_mark_control_plane(ctx) -> Plan:
    from .apiphases import node_patch, plan_mark_control_plane

    plan = plan_mark_control_plane(ctx)
    if not manifests.uses_instance_config(ctx.cluster):
        from ..core.plan import ApiObject

        plan.add(ApiObject(node_patch(ctx.node_name, annotations={
            K.CRI_SOCKET_ANNOTATION: ctx.node_registration.cri_socket}), strategy="patch"))
    return plan


def plan_join_wait_control_plane(ctx) -> Plan:
    from .apiphases import plan_wait_control_plane

    return plan_wait_control_plane(ctx)


# --- the table ------------------------------------------------------------------------------------------
_CP = dict(run_if=_is_cp, skip_reason="worker join: no control-plane components")


def _preflight_probes(ctx) -> list[str]:
    from .preflight import paths_to_probe

    return paths_to_probe(ctx) + [ctx.config.join.ca_cert_path]


def _download_probes(ctx) -> list[str]:
    from .certs import pki_paths

    paths = pki_paths(ctx, pki.CA_SPECS) + [posixpath.join(ctx.pki_dir, f) for f in ("sa.key", "sa.pub")]
    if ctx.cluster.etcd_external is not None:
        paths += [p for p in (_external_etcd_target(ctx, n) for n in
                              ("external-etcd-ca.crt", "external-etcd.crt", "external-etcd.key")) if p]
    return paths


def _kubelet_start_probes(ctx) -> list[str]:
    from .kubelet import kubelet_file_paths

    return [ctx.config.join.ca_cert_path, posixpath.join(K.KUBERNETES_DIR, K.BOOTSTRAP_KUBELET_KUBECONFIG),
            *kubelet_file_paths(ctx)]


def _etcd_join_probes(ctx) -> list[str]:
    from .controlplane import etcd_probes

    return etcd_probes(ctx)


JOIN_PHASES = (
    Phase("preflight", "Run join pre-flight checks", run=plan_preflight_join, where=OPERATOR,
          probes=_preflight_probes),
    Phase("control-plane-prepare", "Prepare the machine for serving a control plane", phases=(
        Phase("download-certs", "Download certificates shared among control-plane nodes from the kubeadm-certs "
              "Secret", run=plan_download_certs, probes=_download_probes, produces=("pki",), **_CP),
        Phase("certs", "Generate the certificates for the new control plane components", run=plan_join_certs,
              probes=lambda ctx: [posixpath.join(ctx.pki_dir, f) for f in sorted(_leaf_files())],
              needs=("pki",), produces=("node-certs",), **_CP),
        Phase("kubeconfig", "Generate the kubeconfig for the new control plane components",
              run=plan_join_kubeconfig, needs=("pki",), produces=("kubeconfigs",),
              probes=lambda ctx: [posixpath.join(K.KUBERNETES_DIR, n) for n in JOIN_CP_KUBECONFIGS], **_CP),
        Phase("control-plane", "Generate the manifests for the new control plane components",
              run=plan_join_control_plane_manifests, needs=("node-certs", "kubeconfigs"), produces=("static-pods",),
              probes=lambda ctx: [manifest_path(c) for c in K.CONTROL_PLANE_COMPONENTS], **_CP),
    )),
    Phase("check-etcd", "Check that the local etcd cluster is healthy", run=plan_check_etcd, hidden=True,
          run_if=_local_etcd_cp, skip_reason="no local etcd member on this node", needs=("node-certs",)),
    Phase("kubelet-start", "Write kubelet settings, certificates and (re)start the kubelet",
          run=plan_join_kubelet_start, probes=_kubelet_start_probes, produces=("kubelet",)),
    Phase("control-plane-join", "Join a machine as a control plane instance", phases=(
        Phase("etcd", "Add a new local etcd member", run=plan_etcd_join, run_if=_local_etcd_cp,
              skip_reason="no local etcd member on this node", probes=_etcd_join_probes,
              needs=("node-certs", "kubelet"), produces=("etcd-member",)),
        Phase("kubelet-wait-bootstrap", "Wait for the kubelet to bootstrap itself", run=plan_kubelet_wait_bootstrap,
              hidden=True, needs=("kubelet",), **_CP),
        Phase("mark-control-plane", "Mark a node as a control-plane", run=plan_join_mark_control_plane,
              where=API, needs=("api", "kubelet"), **_CP),
    )),
    Phase("wait-control-plane", "Wait for the control plane to start", run=plan_join_wait_control_plane,
          where=API, needs=("kubelet", "static-pods"), **_CP),
)

# discovery (or the operator's state dir) gives the cluster: its API answers before any phase runs
JOIN = Workflow("join", JOIN_PHASES, given=("api",),
                summary="Run this on any machine you wish to join an existing cluster")
JOIN_CONTROL_PLANE = Workflow("join-control-plane", JOIN_PHASES, given=("api",),
                              summary="Run this on a machine you wish to join as a new control-plane instance")
