"""What a phase gets to read: the typed run context (kubeadm's ``InitData``/``JoinData``).

A phase is ``run(ctx) -> Plan`` and reads only this. The context is frozen: its inputs are
the host's config, the state dir (read, and written only through ``store``), the facts, the
command's options, what discovery learned (``join_data``) and which phases are selected. What
is derived from them (the PKI, kubeconfigs, static Pods, the etcd member list, minted tokens)
is computed on first use and cached per context (``cached_property``), so a phase that is
skipped costs nothing and two phases see the same certificate. Nothing else is ever set on a
context: a new input means a new context (:meth:`RunContext.with_facts`, ``dataclasses.replace``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..core import constants as K
from ..core import versions
from ..core.secrets import Secret
from ..core.spec import BootstrapToken, KubeadmConfig
from ..core.facts import HostFacts
from ..core.state import ClusterState

if TYPE_CHECKING:
    from ..core.statestore import PendingStore
    from .joindata import JoinData


@dataclass(frozen=True)
class Options:
    """Flags of one command run (the CLI fills it; phases only read it)."""

    dry_run: bool = False
    offline: bool = False
    show_secrets: bool = False
    upload_certs: bool = False
    certificate_key: Secret | None = None
    skip_certificate_key_print: bool = False
    skip_token_print: bool = False
    ignore_preflight_errors: frozenset[str] = frozenset()
    inventory_path: str = ""
    patches: str = ""  # --patches DIR (wins over the config's patches.directory, as in kubeadm)


from ..core.endpoints import join_host_port, split_host_port  # noqa: E402,F401 - the one copy


@dataclass(frozen=True)
class RunContext:
    """Everything one host's phases read.

    :param config: the host's defaulted kubeadm configuration.
    :param host_name: the inventory name (used in messages and output folders).
    :param state: the cluster state directory on the operator machine.
    :param facts: the host's facts, or ``None`` offline.
    :param options: the command's flags.
    :param now: the run's clock (one instant for every certificate and token of the run).
    :param store: where new state files go: a :class:`~tasks.core.statestore.PendingStore`
        (written by the pipeline after planning, never by a dry-run); None = the disk at once.
    :param join_data: what discovery learned about the cluster (joins); None = nothing
        discovered (offline, an init, a reset): join phases then read the state dir.
    :param selected: the top-level phase names selected in this run (show-join-command
        mentions control-plane joins only when upload-certs runs).
    :param etcd_restore: the snapshot and members of an ``etcd.restore`` run
        (:class:`~tasks.phases.etcd.RestoreData`); None otherwise.
    :param cluster_kubeconfig: the kubeconfig the API phases use instead of the node's own
        (reset's drain and Node removal: the state dir's admin.conf of the first control plane).
    :param removal: what reset learned about the node's place in the cluster before planning
        (:class:`tasks.phases.reset.Removal`); None = a plain kubeadm reset (``--keep-node``).
    :param renewal: the certificates ``certs.renew`` (or an upgrade) made for this node
        (:class:`tasks.phases.renew.Renewal`).
    :param upgrade: what ``upgrade.apply`` read about the node (:class:`tasks.phases.upgrade.UpgradeData`).
    """

    config: KubeadmConfig
    host_name: str
    state: ClusterState
    facts: HostFacts | None = None
    options: Options = field(default_factory=Options)
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    store: PendingStore | None = None
    join_data: JoinData | None = None
    selected: frozenset[str] = frozenset()
    etcd_restore: Any = None
    cluster_kubeconfig: bytes | None = None
    removal: Any = None
    renewal: Any = None
    upgrade: Any = None

    def with_facts(self, facts: HostFacts | None) -> "RunContext":
        """The same inputs with (new) facts; derived values are computed again."""
        return replace(self, facts=facts)

    # --- configuration shortcuts ---------------------------------------------------------
    @property
    def cluster(self):
        return self.config.cluster

    @property
    def init(self):
        return self.config.init

    @cached_property
    def version(self) -> versions.VersionInfo:
        return versions.for_version(self.cluster.kubernetes_version)

    @property
    def node_registration(self):
        node = self.config.init or self.config.join
        return node.node_registration

    @property
    def node_name(self) -> str:
        return self.node_registration.name

    @property
    def local_endpoint(self):
        if self.config.init is not None:
            return self.config.init.local_api_endpoint
        return self.config.join.control_plane.local_api_endpoint

    @property
    def advertise_address(self) -> str:
        return self.local_endpoint.advertise_address

    @property
    def bind_port(self) -> int:
        return self.local_endpoint.bind_port

    @property
    def pki_dir(self) -> str:
        return self.cluster.certificates_dir

    @property
    def local_api_url(self) -> str:
        return "https://" + join_host_port(self.advertise_address, self.bind_port)

    @property
    def control_plane_url(self) -> str:
        """kubeadm's control-plane endpoint: controlPlaneEndpoint (its port, else bindPort)."""
        cpe = self.cluster.control_plane_endpoint
        if not cpe:
            return self.local_api_url
        host, port = split_host_port(cpe)
        return "https://" + join_host_port(host, port or self.bind_port)

    @property
    def timeouts(self):
        node = self.config.init or self.config.join
        return node.timeouts

    # --- facts -------------------------------------------------------------------------
    def fact(self, name: str, default: Any = None) -> Any:
        return getattr(self.facts, name, default) if self.facts is not None else default

    @property
    def host_hostname(self) -> str:
        """The machine's host name (offline: the node name, so no override flag is added)."""
        return self.fact("hostname") or self.node_name

    @property
    def host_ca_dirs(self) -> tuple[str, ...]:
        dirs = self.fact("ca_dirs")
        return tuple(dirs) if dirs is not None else ("/etc/ssl/certs", "/etc/ca-certificates",
                                                       "/usr/share/ca-certificates",
                                                       "/usr/local/share/ca-certificates")

    @property
    def proxy_env(self) -> dict[str, str]:
        return dict(self.fact("proxy_env") or {})

    # --- the state dir: read, and written only through the store ---------------------------
    @property
    def node_state_dir(self):
        """``<state>/nodes/<node>``: this node's leaves and kubeconfigs (not created here)."""
        return self.state.root / "nodes" / self.node_name

    def _files(self):
        """Where state files are written: the run's pending store, else the disk at once."""
        if self.store is not None:
            return self.store
        self.state.ensure()
        from ..core.statestore import DISK

        return DISK

    def state_file(self, path) -> bytes | None:
        """A state file as this run sees it: pending (made by this run), else on disk."""
        from ..core.statestore import read_file

        return self.store.read(path) if self.store is not None else read_file(path)

    def _join_material(self):
        return self.store if self.store is not None else self.state

    def _remember(self, **material) -> None:
        if self.store is None:
            self.state.ensure()
        self._join_material().remember(**material)

    # --- PKI (central, cached) -------------------------------------------------------------
    @cached_property
    def cluster_pki(self):
        """The shared CAs and service-account key: the state dir's (made on an init when
        missing); on a join, the state dir's or the downloaded kubeadm-certs, never new ones."""
        if self.config.join is not None:
            from .join import join_cluster_pki

            return join_cluster_pki(self)
        return self.state_cluster_pki()

    def state_cluster_pki(self):
        from ..core import pki

        return pki.ensure_cluster_pki(self.state.pki_dir, self.cluster, now=self.now, store=self._files())

    @cached_property
    def node_pki(self):
        from ..core import pki

        return pki.ensure_node_pki(self.cluster_pki, self.node_state_dir, self.cluster,
                                   node_name=self.node_name, advertise_address=self.advertise_address,
                                   now=self.now, store=self._files())

    # --- join material (cached, remembered in the state dir) --------------------------------
    @cached_property
    def bootstrap_tokens(self) -> tuple[BootstrapToken, ...]:
        """The init's bootstrap tokens: from the config, else the one kept in the state dir,
        else a new one (remembered so a re-run converges on the same Secret)."""
        from ..core import bootstrap

        configured = self.init.bootstrap_tokens if self.init else ()
        if configured and all(t.token for t in configured):
            return tuple(configured)
        template = configured[0] if configured else BootstrapToken(token=Secret("", "bootstrap token"))
        token = self._join_material().token()
        if token is None:
            token = bootstrap.generate_token()
            self._remember(token=token)
        return (replace(template, token=token),)

    @cached_property
    def certificate_key(self) -> Secret:
        from ..core import bootstrap

        key = self.options.certificate_key or (self.init.certificate_key if self.init else None)
        key = key or self._join_material().certificate_key()
        if key is None:
            key = bootstrap.generate_certificate_key()
        self._remember(certificate_key=key)
        return key

    @property
    def is_control_plane(self) -> bool:
        return self.config.init is not None or (self.config.join is not None
                                                and self.config.join.control_plane is not None)

    def control_plane_taints(self):
        taints = self.node_registration.taints
        if taints is None:
            from ..core.spec import Taint

            return (Taint(K.CONTROL_PLANE_TAINT_KEY, "NoSchedule"),)
        return taints

    # --- derived from the inputs, once per context ----------------------------------------------
    @cached_property
    def kubeconfigs(self):
        """This node's kubeconfig files (file name -> bytes), from the state dir or new."""
        from ..core import kubeconfig as kc

        return kc.ensure_node_kubeconfigs(
            self.cluster_pki, self.node_state_dir, self.cluster, node_name=self.node_name,
            control_plane_url=self.control_plane_url, local_url=self.local_api_url,
            is_control_plane=self.is_control_plane, init=self.config.init is not None, now=self.now,
            store=self._files())

    @property
    def api_kubeconfig(self) -> bytes | None:
        """The kubeconfig API phases use on this node: admin.conf on a control plane (or the
        command's ``cluster_kubeconfig``)."""
        if self.cluster_kubeconfig is not None:
            return self.cluster_kubeconfig
        return self.kubeconfigs.get(K.ADMIN_KUBECONFIG) if self.is_control_plane else None

    @property
    def patches_directory(self) -> str:
        """``--patches``, else the config's ``patches.directory`` (kubeadm's PatchesDir)."""
        node = self.config.init or self.config.join
        return self.options.patches or (node.patches_directory if node is not None else "")

    @property
    def api_via(self) -> tuple[str, int] | None:
        """Where the API server is as the host sees it, for a tunnel through the host: the
        ``cluster_kubeconfig``'s server (the control-plane endpoint, which every node reaches),
        else this control plane's own address."""
        if self.cluster_kubeconfig is not None:
            import yaml

            try:
                server = yaml.safe_load(self.cluster_kubeconfig)["clusters"][0]["cluster"]["server"]
                host, port = split_host_port(server.removeprefix("https://"))
                return host, int(port or 443)
            except (TypeError, KeyError, IndexError, ValueError, yaml.YAMLError):
                return None  # no tunnel: the API must answer from here
        return self.advertise_address, self.bind_port

    @cached_property
    def patches(self):
        """The patch directory's patches (read once per context), or None without one.

        :raises PatchError: for a directory or file kubeadm would refuse.
        """
        from ..core.patches import load_patch_dir

        directory = self.patches_directory
        return load_patch_dir(directory) if directory else None

    @cached_property
    def _static_pods_and_notes(self) -> tuple[dict[str, bytes], dict[str, list[str]]]:
        from ..core import manifests

        pods = manifests.render_static_pods(
            self.cluster, node_name=self.node_name, advertise_address=self.advertise_address,
            bind_port=self.bind_port, host_ca_dirs=self.host_ca_dirs, proxy_env=self.proxy_env,
            timeouts=self.timeouts, initial_cluster=self.etcd_initial_cluster,
            join=self.config.join is not None, external_ca=self.cluster_pki.external_ca)
        notes: dict[str, list[str]] = {}
        if self.patches is not None:
            for name in list(pods):
                pods[name], notes[name] = manifests.patch_static_pod(pods[name], name, self.patches)
        return pods, notes

    @property
    def static_pods(self) -> dict[str, bytes]:
        """The node's static Pod manifests, with the patch directory's patches applied."""
        return self._static_pods_and_notes[0]

    def patch_notes(self, component: str) -> list[str]:
        """kubeadm's ``[patches] Applied patch ...`` lines for one static Pod."""
        return list(self._static_pods_and_notes[1].get(component, ()))

    @cached_property
    def cluster_join_data(self) -> JoinData:
        """``join_data``, else the join material of the state dir (see :func:`tasks.phases.join.join_data`)."""
        from .join import state_join_data

        return self.join_data if self.join_data is not None else state_join_data(self)

    @cached_property
    def etcd_initial_cluster(self) -> list[tuple[str, str]] | None:
        """``--initial-cluster`` of a control-plane join with local etcd (None otherwise)."""
        from .join import etcd_initial_cluster

        return etcd_initial_cluster(self)

    @cached_property
    def same_cluster(self) -> bool:
        """The host's ca.crt is the cluster CA (a re-run on a member, not a clash): the CA this
        operator holds on an init, the discovered one on a join."""
        from .preflight import same_cluster

        return same_cluster(self)
