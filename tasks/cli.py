"""The Invoke/Fabric tasks: flags, help and error handling only — no logic.

Every task turns a :class:`~tasks.core.errors.KubefabError` into ``Exit(message, 1)``: a clear
message naming the host, phase and fix, never a traceback (``--debug`` or ``KUBEFAB_DEBUG=1``
shows one). kubefab's tasks take the whole ``-H`` list in one call (see
:class:`KubefabExecutor`), so multi-host commands can run hosts in parallel where kubeadm allows.
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
import sys
import time
import traceback

from fabric import Executor as FabricExecutor
from invoke import Call, Collection, Exit, ParserContext, Task, task

from .core.errors import KubefabError
from .core.secrets import Secret
from .phases.context import Options

from .commands import DEFAULT_INVENTORY, resolve_inventory_path  # noqa: E402
# Invoke reads "-h" after a task as the core --help flag only when the task has no "-h" of its
# own (kubefab tasks have no short flags) and no flag is waiting for a value.
HELP_WORDS = ("-h", "--help")


class KubefabExecutor(FabricExecutor):
    """Fabric's executor, except that kubefab tasks get the ``-H`` list in one call.

    Fabric expands ``fab -H a,b <task>`` into one serial call per host. kubefab's tasks decide
    themselves how hosts run (control planes one at a time, workers in parallel), so for a task
    marked ``kubefab_hosts = True`` the host list is put in the config (``kubefab.hosts``) and the
    task is called once. Other tasks keep Fabric's behaviour.

    ``-h``/``--help`` given where a flag value belongs (``fab init --only -h``) prints the
    task's help instead of running the task with that value.
    """

    def execute(self, *tasks):
        for ctx in tasks:
            if isinstance(ctx, ParserContext) and any(
                    arg.takes_value and arg.value in HELP_WORDS for arg in ctx.args.values()):
                _print_task_help(self.collection, ctx.name)
                return {}
        return super().execute(*tasks)

    def expand_calls(self, calls, apply_hosts=True):
        if apply_hosts and any(getattr(_body(c), "kubefab_hosts", False) for c in calls):
            host_str = self.core[0].args.hosts.value or ""
            hosts = [h.strip() for h in host_str.split(",") if h.strip()]
            self.config.load_overrides({"kubefab": {"hosts": hosts}}, merge=True)
            return super().expand_calls(calls, apply_hosts=False)
        return super().expand_calls(calls, apply_hosts)


# Fabric's core options that kubefab's tasks would silently ignore (they run their own SSH
# transport, with the inventory's settings): refused, with what to do instead
UNUSED_CORE_FLAGS = (
    (("dry",), "-R/--dry", "kubefab runs its own commands, which -R would not stop: use the task's --dry-run "
                           "(fab -H master1 init --dry-run)"),
    (("i", "identity"), "-i/--identity", "set ssh.identity in the inventory (inventory/hosts.yaml), or load the key "
                                         "into ssh-agent"),
    (("S", "ssh-config"), "-S/--ssh-config", "set ssh.ssh_config in the inventory"),
    (("t", "connect-timeout"), "-t/--connect-timeout", "drop it: kubefab retries each SSH connect within its own "
                                                       "timeout"),
    (("T", "command-timeout"), "-T/--command-timeout", "drop it: kubefab's waits take kubeadm's timeouts (the "
                                                       "`timeouts:` of the kubeadm config)"),
    (("prompt-for-sudo-password",), "--prompt-for-sudo-password before the task",
     "put it after the task: fab -H master1 init --prompt-for-sudo-password"),
    (("prompt-for-login-password",), "--prompt-for-login-password", "kubefab logs in with a key: ssh.identity in "
                                                                    "the inventory, or ssh-agent"),
    (("prompt-for-passphrase",), "--prompt-for-passphrase", "load the key into ssh-agent (ssh-add), or use a key "
                                                            "without a passphrase in ssh.identity"),
    (("e", "echo"), "-e/--echo", "use -v after the task: it shows every command kubefab runs"),
    (("p", "pty"), "-p/--pty", "drop it: kubefab's commands run without a terminal"),
    (("w", "warn-only"), "-w/--warn-only", "drop it: kubefab stops at the first failed step and says why"),
    (("hide",), "--hide", "drop it: kubefab prints only its own progress (-v for more)"),
)


def refuse_unused_core_flags(args) -> None:
    """Stop with what to do instead when a core option of :data:`UNUSED_CORE_FLAGS` is given.

    :param args: the program's parsed core arguments (``program.args``).
    """
    def given(name: str):
        try:
            return args[name].value
        except KeyError:
            return None

    unused = [(flag, fix) for names, flag, fix in UNUSED_CORE_FLAGS if any(given(n) for n in names)]
    if unused:
        raise Exit("\n".join(f"{flag} is one of Fabric's options that kubefab does not use\n  fix: {fix}"
                             for flag, fix in unused), code=2)


def _guard_fabric_core() -> None:
    """Check the core options before Fabric acts on them: it loads ``-S``'s file and asks for
    the ``--prompt-for-*`` passwords in ``update_config``, before any task runs."""
    from fabric import main

    if getattr(main.Fab.update_config, "kubefab_guard", False):
        return
    original = main.Fab.update_config

    def update_config(self, *args, **kwargs):
        refuse_unused_core_flags(self.args)
        return original(self, *args, **kwargs)

    update_config.kubefab_guard = True
    main.Fab.update_config = update_config


_guard_fabric_core()


def _print_task_help(collection, name: str) -> None:
    """``fab --help <name>``'s output, from the running ``fab`` program."""
    from fabric import main

    program = main.program
    if getattr(program, "collection", None) is not collection:
        raise Exit(f"for help: fab --help {name}", code=0)
    program.print_task_help(name)


def _body(call):
    task_ = call.task if isinstance(call, Call) else call
    return getattr(task_, "body", None)


def _hosts_from(c) -> list[str]:
    """The ``-H`` names: from our executor, or from Fabric's per-host Connection."""
    try:
        hosts = list(c.config.kubefab.hosts or [])
    except (AttributeError, KeyError):
        hosts = []
    if not hosts and getattr(c, "original_host", None):
        hosts = [c.original_host]
    return hosts


# The short flags kubefab chose (Fabric's core ones aside): -o as kubectl's and kubeadm's output
# format, -v (-vv) as the verbosity every CLI has. Fabric's core has neither.
SHORT_FLAGS = {"output": "o", "verbose": "v"}
OUTPUT_HELP = "Output format: text (default), json or yaml; the document goes to stdout, everything else to stderr"
VERBOSE_HELP = ("More detail on stderr: -v commands and timings, -vv raw output too (always redacted, always in "
                "the log file); a count of -v, not a number (Invoke shows INT)")
# flags whose value is a credential: never written to the log file, not even redacted by pattern
SECRET_FLAGS = ("--token", "--certificate-key")


class KubefabTask(Task):
    """A task whose only short flags are :data:`SHORT_FLAGS` (Invoke's generated ones would
    give each task its own made-up ``-h``, ``-o``, ``-r``...)."""

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS:
            opts["names"] = [*opts["names"], SHORT_FLAGS[name]]
        return opts


def _with_common_params(fn, *, reports: bool):
    """``fn``'s signature plus ``verbose`` (every task) and ``output`` (tasks that report)."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    extra = [inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=0)]
    if reports:
        extra.insert(0, inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=""))
    names = {p.name for p in params}
    extra = [p for p in extra if p.name not in names]
    return sig.replace(parameters=[*params, *extra])


def redacted_argv(argv: list[str]) -> list[str]:
    """The command line for the log file: the values of :data:`SECRET_FLAGS` replaced."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("<redacted>")
            hide_next = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in SECRET_FLAGS:
            if "=" in arg:
                out.append(f"{flag}=<redacted>")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def kubefab_task(*args, reports: bool = False, **kwargs):
    """``@task`` plus kubefab's error handling, whole-host-list calling and common flags.

    No short flags are generated: kubefab's flags are long and named as kubeadm names them,
    ``-h`` after a task stays help; the only short ones are ``-o`` and ``-v``
    (:data:`SHORT_FLAGS`). Every task gets ``-v``/``--verbose`` and writes the log file
    (:func:`tasks.output.open_log`); a task that ``reports`` gets ``-o``/``--output``
    (text, json, yaml: :func:`tasks.output.emit`).
    """
    from . import output as out

    def wrap(fn):
        # one shared help table; each task documents only the flags it has
        params = inspect.signature(fn).parameters
        kwargs["help"] = {k: v for k, v in kwargs.get("help", {}).items() if k in params}
        kwargs["help"]["verbose"] = VERBOSE_HELP
        if reports:
            kwargs["help"]["output"] = OUTPUT_HELP

        @functools.wraps(fn)
        def inner(c, *a, **kw):
            from . import __version__

            debug = kw.get("debug") or os.environ.get("KUBEFAB_DEBUG") == "1"
            verbose = int(kw.pop("verbose", 0) or 0)
            fmt = kw.pop("output", "") if reports else ""
            name = fn.__name__.replace("_", "-")
            try:
                out.configure(format=fmt, verbosity=verbose, command=name)
            except ValueError:
                raise Exit(f"-o/--output {fmt[:20]!r} is not an output format\n"
                           f"  fix: use one of: {', '.join(out.FORMATS)}", code=1) from None
            out.open_log()
            started = time.monotonic()
            out.LOG.info("run: %s (kubefab %s, pid %d)", shlex.join(redacted_argv(sys.argv)), __version__,
                         os.getpid())
            code = 0
            try:
                return fn(c, *a, **kw)
            except KubefabError as exc:
                code = 1
                if debug or verbose >= 2:
                    traceback.print_exc()
                out.LOG.debug("%s", traceback.format_exc())
                out.LOG.error("%s", exc.render())
                raise Exit(exc.render(), code=1) from None
            except KeyboardInterrupt:
                code = 130
                raise Exit("interrupted", code=130) from None
            except BaseException:
                code = 1
                out.LOG.error("%s", traceback.format_exc())
                raise
            finally:
                out.LOG.info("exit %d after %.1fs", code, time.monotonic() - started)
                out.close_log()
                out.configure()  # in-process callers (tests) get text output back

        inner.__signature__ = _with_common_params(fn, reports=reports)
        inner.kubefab_hosts = True
        return task(*args, klass=KubefabTask, auto_shortflags=False, incrementable=["verbose"], **kwargs)(inner)

    return wrap


def split_csv(text: str) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


COMMON_HELP = {
    "inventory": f"Inventory file (default: $KUBEFAB_INVENTORY, else {DEFAULT_INVENTORY})",
    "state_dir": "Cluster state dir holding the central PKI and join material (default .kubefab/<cluster> "
                 "beside the inventory)",
    "dry_run": "Show what would change on each host; change nothing",
    "offline": "With --dry-run: make no connection; take node name and address from the inventory",
    "output_dir": "With --dry-run --offline: write every planned file to DIR/<host>/<path>, the API objects to "
                  "DIR/api/<namespace>/<Kind>-<name>.yaml (Secrets redacted) and DIR/plan.json",
    "only": "Run only these phases (comma list of kubeadm phase paths, e.g. certs,kubeconfig/admin)",
    "skip_phases": "Skip these phases (comma list, e.g. addon/kube-proxy,upload-certs); wins over --only",
    "show_secrets": "Print tokens, certificate keys and private keys instead of redacting them",
    "ignore_preflight_errors": "Comma list of preflight checks whose errors become warnings, or 'all'",
    "accept_new_host_keys": "Trust and record host keys not yet in known_hosts (first contact only)",
    "prompt_for_sudo_password": "Ask once for the sudo password of the SSH user (fed on stdin, never echoed)",
    "debug": "Show tracebacks for errors",
    "patches": "Directory of kubeadm patch files target[suffix][+patchtype].{yaml,json} (targets kube-apiserver, "
               "kube-controller-manager, kube-scheduler, etcd, kubeletconfiguration, corednsdeployment; types "
               "strategic (default), merge, json), on this machine; wins over patches.directory",
}


def _init_help() -> dict[str, str]:
    return {
        **COMMON_HELP,
        "upload_certs": "Upload the control-plane CAs to the kubeadm-certs Secret, encrypted with the certificate key",
        "certificate_key": "Key (64 hex chars) that encrypts kubeadm-certs (default: kept in the state dir, "
                           "generated once)",
        "skip_certificate_key_print": "Do not print the certificate key used to encrypt kubeadm-certs",
        "skip_token_print": "Do not print the bootstrap token in the join commands",
    }


def _init_doc() -> str:
    from .phases.init import INIT

    return (
        """Bring up the first control-plane node (kubeadm init) on the -H host.

Runs kubeadm init's phases on the host over SSH: preflight checks from the host's facts,
the central PKI pushed to /etc/kubernetes/pki, kubeconfigs, static Pod manifests, the kubelet,
then the cluster objects through the API. Re-running converges ("0 changed").

"""
        + INIT.help_text()
        + """

Examples:
  fab -H master1 init
  fab -H master1 init --upload-certs
  fab -H master1 init --dry-run
  fab -H master1 init --dry-run --offline --output-dir out/
  fab -H master1 init --dry-run -o json
  fab -H master1 init --only certs
  fab -H master1 init --skip-phases addon/kube-proxy
  fab -H master1 init --patches patches/ --dry-run --offline
"""
    )


@kubefab_task(help=_init_help(), reports=True)
def init(c, inventory="", state_dir="", dry_run=False, offline=False, output_dir="", only="", skip_phases="",
         show_secrets=False, upload_certs=False, certificate_key="", skip_certificate_key_print=False,
         skip_token_print=False, ignore_preflight_errors="", accept_new_host_keys=False,
         prompt_for_sudo_password=False, patches="", debug=False):
    from . import commands
    from .phases.context import Options

    if certificate_key:
        certificate_key = Secret(certificate_key.strip().lower(), kind="certificate key")
    options = Options(
        dry_run=dry_run, offline=offline, show_secrets=show_secrets, upload_certs=upload_certs,
        certificate_key=certificate_key or None, skip_certificate_key_print=skip_certificate_key_print,
        skip_token_print=skip_token_print,
        ignore_preflight_errors=frozenset(n.lower() for n in split_csv(ignore_preflight_errors)),
        inventory_path=str(resolve_inventory_path(inventory)), patches=patches,
    )
    commands.init(
        hosts=_hosts_from(c), options=options, state_dir=state_dir, output_dir=output_dir,
        only=split_csv(only), skip=split_csv(skip_phases),
        accept_new_host_keys=accept_new_host_keys, prompt_for_sudo_password=prompt_for_sudo_password,
    )


init.__doc__ = _init_doc()
init.body.__doc__ = init.__doc__


JOIN_HELP = {
    **COMMON_HELP,
    "only": "Run only these phases (comma list of kubeadm join's phase paths, e.g. preflight,kubelet-start)",
    "skip_phases": "Skip these phases (comma list, e.g. control-plane-join/mark-control-plane); wins over --only",
    "token": "Bootstrap token (<id>.<secret>) for discovery and TLS bootstrap (default: the state dir's)",
    "discovery_token_ca_cert_hash": "Pin(s) of the cluster CA, sha256:<hex>, comma list (default: the state "
                                    "dir's CA)",
    "discovery_token_unsafe_skip_ca_verification": "Join without pinning the CA (kubeadm's unsafe flag)",
    "discovery_file": "Discover the cluster from a kubeconfig file or https URL instead of a token",
    "endpoint": "API server endpoint host:port for discovery (default: controlPlaneEndpoint, else the first "
                "control plane)",
    "certificate_key": "Key (64 hex chars) that decrypts kubeadm-certs (default: the state dir's)",
    "parallel": "How many workers join at once (default 30, as k0sctl)",
}


def _join(c, *, control_plane: bool, inventory, state_dir, dry_run, only, skip_phases, show_secrets,
          ignore_preflight_errors, accept_new_host_keys, prompt_for_sudo_password, token, discovery_token_ca_cert_hash,
          discovery_token_unsafe_skip_ca_verification, discovery_file, endpoint, certificate_key="", parallel=30, patches=""):
    from . import cluster

    inv, state = _inventory_and_state(inventory, state_dir)
    options = Options(dry_run=dry_run, show_secrets=show_secrets,
                      ignore_preflight_errors=frozenset(n.lower() for n in split_csv(ignore_preflight_errors)),
                      inventory_path=str(resolve_inventory_path(inventory)), patches=patches)
    flags = cluster.JoinFlags(
        token=Secret(token.strip(), kind="bootstrap token") if token else None,
        ca_cert_hashes=tuple(split_csv(discovery_token_ca_cert_hash)),
        unsafe_skip_ca_verification=discovery_token_unsafe_skip_ca_verification,
        endpoint=endpoint, discovery_file=discovery_file,
        certificate_key=Secret(certificate_key.strip().lower(), kind="certificate key") if certificate_key else None)
    cluster.join(inv, _hosts_from(c), control_plane=control_plane, state=state, options=options, flags=flags,
                 only=split_csv(only), skip=split_csv(skip_phases), accept_new_host_keys=accept_new_host_keys,
                 prompt_for_sudo_password=prompt_for_sudo_password, parallel=int(parallel))


@kubefab_task(help=JOIN_HELP, reports=True)
def join(c, inventory="", state_dir="", dry_run=False, only="", skip_phases="", show_secrets=False,
         ignore_preflight_errors="", accept_new_host_keys=False, prompt_for_sudo_password=False, token="",
         discovery_token_ca_cert_hash="", discovery_token_unsafe_skip_ca_verification=False, discovery_file="",
         endpoint="", parallel=30, patches="", debug=False):
    """Join the -H hosts to the cluster as workers, in parallel (kubeadm join).

    Discovery (cluster-info checked against the token's signature and the CA pin), then the
    kubelet with a bootstrap kubeconfig, until its TLS bootstrap gives it kubelet.conf. Token and
    CA pin come from the state dir after `fab init`, or from the flags (as kubeadm's).

    Examples:
      fab -H worker1,worker2 join
      fab -H worker3 join --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:...
      fab -H worker1 join --patches patches/
    """
    _join(c, control_plane=False, inventory=inventory, state_dir=state_dir, dry_run=dry_run, only=only,
          skip_phases=skip_phases, show_secrets=show_secrets, ignore_preflight_errors=ignore_preflight_errors,
          accept_new_host_keys=accept_new_host_keys, prompt_for_sudo_password=prompt_for_sudo_password, token=token,
          discovery_token_ca_cert_hash=discovery_token_ca_cert_hash,
          discovery_token_unsafe_skip_ca_verification=discovery_token_unsafe_skip_ca_verification,
          discovery_file=discovery_file, endpoint=endpoint, parallel=parallel, patches=patches)


@kubefab_task(help=JOIN_HELP, reports=True)
def join_control_plane(c, inventory="", state_dir="", dry_run=False, only="", skip_phases="", show_secrets=False,
                       ignore_preflight_errors="", accept_new_host_keys=False, prompt_for_sudo_password=False,
                       token="", discovery_token_ca_cert_hash="", discovery_token_unsafe_skip_ca_verification=False,
                       discovery_file="", endpoint="", certificate_key="", patches="", debug=False):
    """Join the -H hosts as control planes, one at a time (kubeadm join --control-plane).

    Needs a controlPlaneEndpoint. The CAs come from the state dir, or from kubeadm-certs
    decrypted with --certificate-key; etcd members are added as learners and promoted.

    Examples:
      fab -H master2,master3 join-control-plane
      fab -H master2 join-control-plane --certificate-key <key printed by init>
      fab -H master2 join-control-plane --patches patches/
    """
    _join(c, control_plane=True, inventory=inventory, state_dir=state_dir, dry_run=dry_run, only=only,
          skip_phases=skip_phases, show_secrets=show_secrets, ignore_preflight_errors=ignore_preflight_errors,
          accept_new_host_keys=accept_new_host_keys, prompt_for_sudo_password=prompt_for_sudo_password, token=token,
          discovery_token_ca_cert_hash=discovery_token_ca_cert_hash,
          discovery_token_unsafe_skip_ca_verification=discovery_token_unsafe_skip_ca_verification,
          discovery_file=discovery_file, endpoint=endpoint, certificate_key=certificate_key, parallel=1,
          patches=patches)


@kubefab_task(help={**COMMON_HELP, "parallel": JOIN_HELP["parallel"],
                    "skip_certificate_key_print": _init_help()["skip_certificate_key_print"],
                    "skip_token_print": _init_help()["skip_token_print"]}, reports=True)
def cluster_up(c, inventory="", state_dir="", dry_run=False, show_secrets=False, accept_new_host_keys=False,
               parallel=30, patches="", skip_certificate_key_print=False, skip_token_print=False, debug=False):
    """Bring up the whole cluster of the inventory: init, control-plane joins, workers.

    init (with --upload-certs) on the first control plane of the inventory, then the other control
    planes one at a time while the workers join in parallel (--parallel at a time); then waits for
    every Node to be Ready and prints a summary. Re-running converges; a host added to the
    inventory is joined. Prints init's join commands with the token and certificate key, as
    kubeadm init does (unless --skip-token-print / --skip-certificate-key-print).

    Examples:
      fab cluster-up --inventory inventory/hosts.yaml
      fab cluster-up --patches patches/
      fab cluster-up --skip-token-print --skip-certificate-key-print
    """
    from . import cluster

    inv, state = _inventory_and_state(inventory, state_dir)
    options = Options(dry_run=dry_run, show_secrets=show_secrets, upload_certs=True,
                      skip_certificate_key_print=skip_certificate_key_print, skip_token_print=skip_token_print,
                      inventory_path=str(resolve_inventory_path(inventory)), patches=patches)
    cluster.cluster_up(inv, state=state, options=options, accept_new_host_keys=accept_new_host_keys,
                       parallel=int(parallel))


RESET_HELP = {
    **COMMON_HELP,
    "force": "Do not ask for confirmation (kubeadm reset); delete pods that declare no controller "
             "(kubectl drain); remove an etcd member even when that breaks quorum",
    "keep_node": "Reset the host only (kubeadm reset alone): no drain, the Node object and the other members "
                 "are left as they are",
    "unreachable": "The host is dead: skip drain and the host's reset; remove its etcd member (through "
                   "another control plane) and its Node",
    "delete_emptydir_data": "Drain pods with emptyDir volumes too; their data is lost (kubectl drain's flag)",
    "timeout": "How long the drain may take, a Go duration (default 0s: no limit, as kubectl drain's)",
    "only": "Run only these phases (comma list of reset's phases: preflight, drain, remove-etcd-member, "
            "cleanup-node, delete-node)",
    "skip_phases": "Skip these phases (comma list, e.g. drain,delete-node); wins over --only",
}


@kubefab_task(help=RESET_HELP, reports=True)
def reset(c, inventory="", state_dir="", force=False, keep_node=False, unreachable=False, delete_emptydir_data=False,
          timeout="0s", dry_run=False, only="", skip_phases="", accept_new_host_keys=False, debug=False):
    """Remove the -H hosts from the cluster: drain, kubeadm reset, delete the Node.

    kubeadm's documented node removal in one command, one host at a time: cordon and drain the
    node (Eviction API, PodDisruptionBudgets respected; DaemonSet and mirror pods skipped), kubeadm
    reset on the host (its etcd member removed, the kubelet stopped, kubeadm's files removed), then
    delete its Node object. Refuses to remove the last control plane, and to break etcd's quorum
    unless --force. A re-join of the host works right after. Leaves CNI configuration and iptables
    rules, as kubeadm does. Asks for confirmation unless --force.

    Examples:
      fab -H worker3 reset
      fab -H worker3 reset --force --timeout 5m
      fab -H master3 reset --dry-run
      fab -H master3 reset --unreachable --force
      fab -H worker3 reset --keep-node --force
    """
    from . import cluster

    inv, state = _inventory_and_state(inventory, state_dir)
    cluster.reset(inv, _hosts_from(c), state=state, options=Options(dry_run=dry_run), force=force,
                  keep_node=keep_node, unreachable=unreachable, delete_emptydir_data=delete_emptydir_data,
                  timeout=timeout, only=split_csv(only), skip=split_csv(skip_phases),
                  accept_new_host_keys=accept_new_host_keys)


@kubefab_task(help={"cert": "A PEM certificate file (default: the cluster CA in the state dir)",
                    "inventory": COMMON_HELP["inventory"], "state_dir": COMMON_HELP["state_dir"],
                    "debug": COMMON_HELP["debug"]})
def ca_hash(c, cert="", inventory="", state_dir="", debug=False):
    """Print the discovery pin (sha256:<hex>) of the cluster CA or of --cert.

    The pin is kubeadm's --discovery-token-ca-cert-hash: SHA-256 over the certificate's DER
    SubjectPublicKeyInfo.

    Examples:
      fab certs.ca-hash
      fab certs.ca-hash --cert /etc/kubernetes/pki/ca.crt
    """
    from . import commands

    print(commands.ca_hash(cert=cert, inventory=inventory and str(resolve_inventory_path(inventory)),
                           state_dir=state_dir))


def _inventory_and_state(inventory: str, state_dir: str):
    from . import commands

    inv = commands.load_inventory(str(resolve_inventory_path(inventory)))
    return inv, commands.state_for(inv, state_dir)


@kubefab_task(help={**COMMON_HELP, "ttl": "How long the token is valid (Go duration, e.g. 24h, 2h30m; 0 = never)",
                    "description": "A human-friendly description of the token",
                    "print_join_command": "Print the whole kubeadm join command instead of only the token"})
def token_create(c, ttl="24h", description="", print_join_command=False, inventory="", state_dir="",
                 accept_new_host_keys=False, debug=False):
    """Create a bootstrap token on the cluster (kubeadm token create).

    Prints the token (it is the command's output, as with kubeadm).

    Examples:
      fab token.create
      fab token.create --ttl 2h --print-join-command
    """
    from . import tokens

    inv, state = _inventory_and_state(inventory, state_dir)
    tokens.create(inv, state, ttl=ttl, description=description, print_join_command=print_join_command,
                  accept_new_host_keys=accept_new_host_keys)


@kubefab_task(help=COMMON_HELP, reports=True)
def token_list(c, inventory="", state_dir="", show_secrets=False, accept_new_host_keys=False, debug=False):
    """List the cluster's bootstrap tokens (kubeadm token list); secrets redacted unless --show-secrets.

    Examples:
      fab token.list
    """
    from . import tokens

    inv, state = _inventory_and_state(inventory, state_dir)
    tokens.list_tokens(inv, state, show_secrets=show_secrets, accept_new_host_keys=accept_new_host_keys)


@kubefab_task(help={**COMMON_HELP, "token": "The token or token id to delete (comma list for several)"})
def token_delete(c, token="", inventory="", state_dir="", accept_new_host_keys=False, debug=False):
    """Delete bootstrap tokens from the cluster (kubeadm token delete).

    Examples:
      fab token.delete --token abcdef
    """
    from . import tokens

    inv, state = _inventory_and_state(inventory, state_dir)
    tokens.delete(inv, state, split_csv(token), accept_new_host_keys=accept_new_host_keys)


token = Collection("token")
token.add_task(token_create, name="create")
token.add_task(token_list, name="list")
token.add_task(token_delete, name="delete")

@kubefab_task(help={"inventory": COMMON_HELP["inventory"], "state_dir": COMMON_HELP["state_dir"],
                    "debug": COMMON_HELP["debug"]}, reports=True)
def check_expiration(c, inventory="", state_dir="", debug=False):
    """Show when the -H hosts' certificates expire (kubeadm certs check-expiration).

    Reads the certificates kubefab made and installed, from the cluster state dir; connects to
    no host. Without -H: every control plane of the inventory.

    Examples:
      fab certs.check-expiration
      fab -H master2 certs.check-expiration
    """
    from . import certs as certs_cmd

    inv, state = _inventory_and_state(inventory, state_dir)
    certs_cmd.check_expiration(inv, state, _hosts_from(c))


@kubefab_task(help={**{k: COMMON_HELP[k] for k in ("inventory", "state_dir", "accept_new_host_keys", "debug")},
                    "version": "The release to upgrade to (vMAJOR.MINOR.PATCH; default: the config's "
                               "kubernetesVersion); kubefab never looks it up"},
              reports=True)
def upgrade_plan(c, version="", inventory="", state_dir="", accept_new_host_keys=False, debug=False):
    """Show what an upgrade to --version changes, and whether it is allowed (kubeadm upgrade plan).

    Reads the running cluster: its version, each control plane's components and etcd, each
    kubelet, CoreDNS, and the kubelet and kube-proxy config versions. Refuses, as kubeadm does,
    a target more than one minor above (or below) the cluster's; warns about kubelets more
    than three minors behind the target.

    Examples:
      fab upgrade.plan
      fab upgrade.plan --version v1.36.3
      fab upgrade.plan --version v1.36.3 -o json
    """
    from . import upgrade as upgrade_cmd
    from .pipeline import ssh_connector

    if version:
        upgrade_cmd.parse_target(version)
    inv, state = _inventory_and_state(inventory, state_dir)
    target = version or upgrade_cmd.resolve_target(inv, "")
    upgrade_cmd.plan(inv, state, target=target, connect=ssh_connector(inv, accept_new_host_keys=accept_new_host_keys))


@kubefab_task(help={**{k: COMMON_HELP[k] for k in ("inventory", "state_dir", "accept_new_host_keys", "debug",
                                                    "dry_run")},
                    "version": "The release to upgrade to (vMAJOR.MINOR.PATCH); it must be the config's "
                               "kubernetesVersion, which is the default",
                    "certificate_renewal": "Renew the certificates of the components that change (default: on, "
                                           "as kubeadm); --no-certificate-renewal keeps them",
                    "max_unavailable": "Workers upgraded (drained) at once: a count or a percentage of the "
                                       "workers (default 10%, at least 1)",
                    "drain_timeout": "How long one node's drain may take, a Go duration (default 5m; 0s: no limit)",
                    "delete_emptydir_data": "Drain pods with emptyDir volumes too; their data is lost "
                                            "(kubectl drain's flag)",
                    "patches": "A kubeadm patches directory, as for init and join"},
              reports=True)
def upgrade_apply(c, version="", inventory="", state_dir="", certificate_renewal=True, max_unavailable="",
                  drain_timeout="5m", delete_emptydir_data=False, patches="", dry_run=False,
                  accept_new_host_keys=False, debug=False):
    """Upgrade the whole cluster to the config's kubernetesVersion (kubeadm upgrade apply + node).

    Set kubernetesVersion in the kubeadm config to the new release first (one minor at a time),
    and install the new kubelet on each node when this command asks for it (kubefab installs no
    packages). Checks that every control plane and etcd member is healthy, then, one control
    plane at a time: backs up its manifests and an etcd snapshot (/etc/kubernetes/tmp/
    kubefab-upgrade-<version>/), renews its certificates, and replaces etcd, the API server, the
    controller manager and the scheduler one by one, each waited for and rolled back if it does
    not come up healthy. Then kubeadm-config, kubelet-config, the RBAC rules, CoreDNS and
    kube-proxy; then each node's kubelet (control planes first, then the workers
    --max-unavailable at a time): drain, new kubelet files, restart, Ready, uncordon. A re-run
    after a failure continues where it stopped.

    Examples:
      fab upgrade.plan                       # what changes, and whether kubeadm allows it
      fab upgrade.apply --dry-run
      fab upgrade.apply
      fab upgrade.apply --version v1.36.3 --max-unavailable 2 -o json
    """
    from . import upgrade as upgrade_cmd

    inv, state = _inventory_and_state(inventory, state_dir)
    options = Options(dry_run=dry_run, inventory_path=str(resolve_inventory_path(inventory)), patches=patches)
    flags = upgrade_cmd.ApplyFlags(certificate_renewal=certificate_renewal, max_unavailable=str(max_unavailable),
                                   drain_timeout=drain_timeout, delete_emptydir_data=delete_emptydir_data)
    upgrade_cmd.apply(inv, state, version=version, options=options, flags=flags,
                      accept_new_host_keys=accept_new_host_keys)


upgrade = Collection("upgrade")
upgrade.add_task(upgrade_plan, name="plan")
upgrade.add_task(upgrade_apply, name="apply")


@kubefab_task(help={"client_name": "The user's name, used as the certificate's CN (required)",
                    "org": "An organization (O) of the certificate, i.e. a group; repeat or comma-separate for several",
                    "validity_period": "How long the certificate is valid, from now (Go duration; default 8760h)",
                    "token": "Authenticate with this token instead of a client certificate",
                    "output_file": "Write the kubeconfig to FILE (created with mode 0600, never overwritten) instead "
                              "of stdout",
                    "dry_run": "Show the kubeconfig that would be written (private key redacted); write nothing",
                    "show_secrets": "With --dry-run: show the private key or token too",
                    "inventory": COMMON_HELP["inventory"], "state_dir": COMMON_HELP["state_dir"],
                    "debug": COMMON_HELP["debug"]},
              iterable=["org"])
def kubeconfig_user(c, client_name="", org=None, validity_period="8760h", token="", output_file="", dry_run=False,
                    show_secrets=False, inventory="", state_dir="", debug=False):
    """Make a kubeconfig for another user (kubeadm kubeconfig user).

    A client certificate for --client-name (groups from --org) signed by the cluster CA in the
    state dir, or a --token, and the cluster's endpoint: controlPlaneEndpoint, else the first
    control plane (or the -H one). Printed to stdout as kubeadm does, or written to
    --output-file FILE with mode 0600. Connects to no host. The user still needs RBAC rights in the cluster.

    Examples:
      fab kubeconfig.user --client-name alice > alice.conf
      fab kubeconfig.user --client-name ops --org system:masters --validity-period 24h --output-file ops.conf
      fab kubeconfig.user --client-name bob --org dev --org qa --output-file bob.conf --dry-run
    """
    from . import commands

    commands.kubeconfig_user(
        client_name=client_name, organizations=tuple(org or ()), validity_period=validity_period,
        token=Secret(token.strip(), kind="token") if token else None, output_file=output_file,
        hosts=_hosts_from(c), inventory=inventory, state_dir=state_dir, dry_run=dry_run,
        show_secrets=show_secrets)


kubeconfig = Collection("kubeconfig")
kubeconfig.add_task(kubeconfig_user, name="user")

@kubefab_task(positional=["names"], help={
    **COMMON_HELP,
    "names": "all, or a comma list of certificate names (apiserver, etcd-server, admin.conf...)",
    "new_keys": "Make new private keys too (kubeadm does); by default each certificate keeps its key"})
def renew(c, names=None, new_keys=False, inventory="", state_dir="", dry_run=False, show_secrets=False,
          accept_new_host_keys=False, debug=False):
    """Renew certificates on every control plane (kubeadm certs renew), cluster-wide.

    Re-issues the named leaf certificates and kubeconfig client certificates (same subject,
    same key, the old SANs plus any the config now requires, a new validity) in the state dir and
    on each control plane (or the -H ones), one host at a time, then restarts the static pods that
    read them: etcd, then the API server, each healthy before the next, then the controller
    manager and scheduler together. A CA is never renewed.

    Names: all, apiserver, apiserver-kubelet-client, front-proxy-client, etcd-server, etcd-peer,
    etcd-healthcheck-client, apiserver-etcd-client, admin.conf, super-admin.conf,
    controller-manager.conf, scheduler.conf.

    Examples:
      fab certs.renew all
      fab certs.renew all --dry-run
      fab -H master1 certs.renew apiserver
      fab certs.renew apiserver,front-proxy-client --new-keys
    """
    from . import certs as certs_cmd

    inv, state = _inventory_and_state(inventory, state_dir)
    options = Options(dry_run=dry_run, show_secrets=show_secrets, inventory_path=str(resolve_inventory_path(inventory)))
    certs_cmd.renew(inv, state, split_csv(names), _hosts_from(c), options=options, new_keys=new_keys,
                    accept_new_host_keys=accept_new_host_keys)


@kubefab_task(help={"output_file": "Where to write it (default: admin.conf at the root of the state dir)",
                    "inventory": COMMON_HELP["inventory"], "state_dir": COMMON_HELP["state_dir"],
                    "debug": COMMON_HELP["debug"]})
def admin(c, output_file="", inventory="", state_dir="", debug=False):
    """Write an admin kubeconfig for this machine (k0sctl's kubeconfig), mode 0600.

    The first control plane's admin.conf from the state dir, whose server is the control-plane
    endpoint; prints the path and the kubectl line to try.

    Examples:
      fab kubeconfig.admin
      fab kubeconfig.admin --output-file ~/.kube/config
    """
    from . import commands

    inv, state = _inventory_and_state(inventory, state_dir)
    commands.kubeconfig_admin(inv, state, output_file=output_file)


@kubefab_task(help={"cluster": "Also ask the cluster (implied by -H or --inventory)", **COMMON_HELP}, reports=True)
def version(c, cluster=False, inventory="", state_dir="", accept_new_host_keys=False, debug=False):
    """Print kubefab's version, the Kubernetes minors it supports, and the cluster's versions.

    The cluster's (the API server's and each Node's kubelet) with -H (those Nodes), --inventory or
    --cluster, through the first control plane's admin.conf from the state dir.

    Examples:
      fab version
      fab version --cluster
      fab -H master1,worker1 version -o json
    """
    from . import commands

    names = _hosts_from(c)
    inv = state = None
    if cluster or names or inventory:
        inv, state = _inventory_and_state(inventory, state_dir)
    commands.version(inv, state, names, accept_new_host_keys=accept_new_host_keys)


kubeconfig.add_task(admin, name="admin")

certs = Collection("certs")
certs.add_task(ca_hash, name="ca-hash")
certs.add_task(check_expiration, name="check-expiration")
certs.add_task(renew, name="renew")

@kubefab_task(help={
    "output_file": "Where to write the backup: a file, or a directory to put <cluster>-etcd-<time>.tar.gz in "
              "(default: the state dir's backups/)",
    "keep": "After the snapshot, keep only the N newest backups of this cluster in that directory (0: keep all)",
    "inventory": COMMON_HELP["inventory"], "state_dir": COMMON_HELP["state_dir"],
    "dry_run": "Say which members would be asked and where the backup would go; connect to nothing",
    "accept_new_host_keys": COMMON_HELP["accept_new_host_keys"], "debug": COMMON_HELP["debug"]})
def etcd_snapshot(c, output_file="", keep=0, inventory="", state_dir="", dry_run=False, accept_new_host_keys=False,
                  debug=False):
    """Save an etcd snapshot of the cluster, with its PKI, to this machine.

    etcdctl snapshot save runs on the first healthy member (-H hosts, else the control planes
    in inventory order); the file is copied here, its sha256 compared with the host's and
    etcd's integrity hash checked, then written with the state dir's pki/ as one archive
    (mode 0600) named <cluster>-etcd-<UTC time>.tar.gz. Its path is printed on stdout.
    Restore it with `fab etcd.restore`.

    Examples:
      fab etcd.snapshot
      fab etcd.snapshot --output-file /backups/ --keep 7
      fab -H master2 etcd.snapshot --output-file master2.tar.gz
      fab etcd.snapshot --dry-run
    """
    from . import etcdbackup

    inv, state = _inventory_and_state(inventory, state_dir)
    etcdbackup.snapshot(inv, state, _hosts_from(c), output_file=output_file, keep=int(keep), dry_run=dry_run,
                        accept_new_host_keys=accept_new_host_keys)


@kubefab_task(positional=["file"], help={
    "file": "The backup: an archive of `fab etcd.snapshot`, or a file of `etcdctl snapshot save`",
    "yes": "Restore without asking for confirmation",
    "inventory": COMMON_HELP["inventory"], "state_dir": COMMON_HELP["state_dir"],
    "dry_run": "Check the backup and the hosts and show every stage's steps; change nothing",
    "accept_new_host_keys": COMMON_HELP["accept_new_host_keys"], "debug": COMMON_HELP["debug"]})
def etcd_restore(c, file=None, yes=False, inventory="", state_dir="", dry_run=False, accept_new_host_keys=False,
                 debug=False):
    """Restore every control plane's etcd from a snapshot (all changes since are lost).

    Checks the backup (its sha256 and etcd's integrity hash; a backup of another cluster,
    whose CA is not the state dir's, is refused), then on every control plane of the
    inventory: uploads it and restores it with etcdutl into a new directory (member names,
    peer URLs and initial cluster from the inventory) while etcd still runs; stops the static
    pods (manifests moved out, waiting until they stopped); swaps the data in (the old kept
    beside it); starts them; waits for every member, quorum, the API server and every Node.
    A failure before the start puts everything back. Asks for confirmation unless --yes.
    Needs etcdutl on the control planes (etcd 3.6 restores only with it).

    Examples:
      fab etcd.restore .kubefab/example/backups/example-etcd-20261206T091654Z.tar.gz
      fab etcd.restore backup.tar.gz --dry-run
      fab etcd.restore backup.tar.gz --yes
    """
    from . import etcdbackup

    inv, state = _inventory_and_state(inventory, state_dir)
    etcdbackup.restore(inv, state, file or "", _hosts_from(c), yes=yes, dry_run=dry_run,
                       accept_new_host_keys=accept_new_host_keys)


etcd = Collection("etcd")
etcd.add_task(etcd_snapshot, name="snapshot")
etcd.add_task(etcd_restore, name="restore")

ns = Collection()
for t in (init, join, join_control_plane, cluster_up, reset):
    ns.add_task(t)
ns.add_task(version)
ns.add_collection(certs)
ns.add_collection(etcd)
ns.add_collection(token)
ns.add_collection(upgrade)
ns.add_collection(kubeconfig)
