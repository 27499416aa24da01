"""HostFiles: file steps already in place on the host (by the facts) are not sent again."""

from __future__ import annotations

import hashlib

from tasks.apply import HostFiles
from tasks.core.plan import Command, FileWrite, Plan
from tasks.phases.kubelet import kubelet_restart_steps
from tasks.remote.facts import HostFacts, PathFact
from tasks.remote.transport import ApplyResult, StepResult


def facts(*files: tuple[str, bytes, int], uid: int = 0, owner: int = 0) -> HostFacts:
    paths = {p: PathFact(p, exists=True, type="file", mode=0o100000 | mode, uid=owner, gid=owner,
                         sha256=hashlib.sha256(data).hexdigest()) for p, data, mode in files}
    return HostFacts(hostname="h", uid=uid, paths=paths)


def restart() -> Command:
    return Command(("systemctl", "restart", "kubelet"), "restart", on_change=True)


def test_files_in_place_and_their_on_change_commands_are_dropped():
    plan = Plan("kubelet-start", "h", [FileWrite("/a", b"A", mode=0o644), restart()])
    sent, dropped = HostFiles(facts(("/a", b"A", 0o644))).prune([plan])
    assert sent[0].steps == [] and dropped == 2


def test_a_changed_file_keeps_its_plan_whole_minus_the_files_in_place():
    plan = Plan("kubelet-start", "h", [FileWrite("/a", b"A"), FileWrite("/b", b"new"), restart()])
    sent, dropped = HostFiles(facts(("/a", b"A", 0o644), ("/b", b"old", 0o644))).prune([plan])
    assert [getattr(s, "path", None) for s in sent[0].steps] == ["/b", None] and dropped == 1


def test_mode_owner_and_non_root_runs_are_not_trusted():
    step = FileWrite("/a", b"A", mode=0o600)
    assert not HostFiles(facts(("/a", b"A", 0o644))).in_place(step)           # mode differs
    assert not HostFiles(facts(("/a", b"A", 0o600), owner=1000)).in_place(step)  # not root's
    assert not HostFiles(facts(("/a", b"A", 0o600), uid=1000)).in_place(step)    # the apply is not as root
    assert not HostFiles(None).in_place(step)                                     # offline
    assert HostFiles(facts(("/a", b"A", 0o600))).in_place(step)


def test_commands_that_always_run_are_kept():
    always = Command(("install", "-d", "-m", "0700", "/var/lib/etcd"), "data dir")
    plan = Plan("etcd/local", "h", [always, FileWrite("/m", b"M")])
    sent, dropped = HostFiles(facts(("/m", b"M", 0o644))).prune([plan])
    assert sent[0].steps == [always] and dropped == 1


def test_what_this_run_wrote_is_remembered():
    files = HostFiles(facts(("/k", b"v1", 0o600)))
    plan = Plan("kubeconfig", "h", [FileWrite("/k", b"v2", mode=0o600)])
    sent, _ = files.prune([plan])
    files.record(sent, ApplyResult("h", (StepResult(0, "write /k", "changed"),), 1, 0.1))
    assert files.in_place(FileWrite("/k", b"v2", mode=0o600))
    assert not files.in_place(FileWrite("/k", b"v1", mode=0o600))
    failed = Plan("kubeconfig", "h", [FileWrite("/k", b"v3", mode=0o600)])
    files.record(failed, ApplyResult("h", (StepResult(0, "write /k", "failed", 1),), 1, 0.1))
    assert not files.in_place(FileWrite("/k", b"v2", mode=0o600))  # unknown after a failure


class _Ctx:
    def __init__(self, **facts):
        self._facts = facts

    def fact(self, name, default=None):
        return self._facts.get(name, default)


def test_a_stopped_or_disabled_kubelet_is_started_and_enabled_whatever_the_files():
    steps = {c.argv[1]: c for c in kubelet_restart_steps(_Ctx(kubelet_active="inactive", kubelet_enabled="disabled"))}
    assert not steps["restart"].on_change and not steps["enable"].on_change and not steps["daemon-reload"].on_change
    steps = {c.argv[1]: c for c in kubelet_restart_steps(_Ctx(kubelet_active="active", kubelet_enabled="enabled"))}
    assert all(c.on_change for c in steps.values())
    assert all(c.on_change for c in kubelet_restart_steps())  # offline: on change only
