"""The dry-run difference (:mod:`tasks.apply`): a plan against the host's facts, step by step,
with the reason the dry-run prints; and the same as data and as text."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from tasks.apply import diff_data, diff_plan, render_diff
from tasks.core.facts import HostFacts, PathFact
from tasks.core.plan import ApiObject, Command, FileRemove, FileWrite, Message, Plan, Wait
from tasks.core.secrets import Secret

DATA = b"hello\n"
SHA = hashlib.sha256(DATA).hexdigest()


def facts(**paths: PathFact) -> HostFacts:
    return HostFacts(hostname="h", uid=0, paths={p.path: p for p in paths.values()})


def there(path: str, sha: str = SHA, mode: int = 0o644) -> PathFact:
    return PathFact(path, exists=True, type="file", mode=0o100000 | mode, sha256=sha)


def actions(plan: Plan, host_facts) -> list[tuple[str, str]]:
    return [(d.action, d.reason) for d in diff_plan(plan, host_facts)]


def test_a_file_is_created_updated_or_left_with_the_reason():
    plan = Plan("p", "h", [FileWrite("/a", DATA), FileWrite("/b", DATA), FileWrite("/c", DATA, mode=0o600),
                           FileWrite("/d", DATA)])
    got = actions(plan, facts(b=there("/b", sha="0" * 64), c=there("/c", mode=0o644), d=there("/d")))
    assert got == [("create", "absent on the host"), ("update", "content differs"),
                   ("update", "mode 0644 should be 0600"), ("unchanged", "same sha256 and mode")]


def test_commands_run_unless_what_they_create_exists_or_no_file_of_the_phase_changed():
    mkdir = Command(("install", "-d", "/var/lib/etcd"), "data dir", creates="/var/lib/etcd")
    restart = Command(("systemctl", "restart", "kubelet"), "restart", on_change=True)
    same = Plan("p", "h", [FileWrite("/f", DATA), restart])
    assert actions(same, facts(f=there("/f"))) == [("unchanged", "same sha256 and mode"),
                                                    ("skip", "no file of this phase changed")]
    assert actions(same, facts())[1] == ("run", "")  # the file is created, so the kubelet restarts
    made = PathFact("/var/lib/etcd", exists=True, type="directory")
    assert actions(Plan("p", "h", [mkdir]), facts(d=made)) == [("skip", "/var/lib/etcd exists")]
    assert actions(Plan("p", "h", [mkdir]), facts()) == [("run", "")]


def test_api_objects_waits_removals_and_messages_are_not_compared_with_the_host():
    obj = ApiObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "y"}})
    plan = Plan("p", "h", [obj, Wait("kubelet-healthz", "http://127.0.0.1:10248/healthz", timedelta(seconds=5)),
                           FileRemove("/etc/kubernetes/pki", recursive=True), Message("done")])
    assert [a for a, _ in actions(plan, facts())] == ["api", "wait", "run", "print"]


def test_render_diff_counts_changes_and_keeps_secrets_out_unless_asked():
    key = FileWrite("/etc/kubernetes/pki/ca.key", Secret(b"-----BEGIN PRIVATE KEY-----\nxyz\n", kind="private key"),
                    mode=0o600)
    plan = Plan("certs/ca", "h", [key, FileWrite("/d", DATA)], notes=["a note"])
    text = render_diff("h", [plan], facts(d=there("/d")))
    assert text.splitlines()[0:2] == ["[h] [certs/ca]", "    # a note"]
    assert text.splitlines()[-1] == "[h] would change 1 steps, 1 unchanged"
    assert "unchanged: write /d" in text and "PRIVATE KEY" not in text
    assert "      | xyz" in render_diff("h", [plan], facts(d=there("/d")), show_secrets=True)


def test_diff_data_is_the_same_difference_as_data_and_planned_offline():
    plan = Plan("p", "h", [FileWrite("/a", DATA)])
    online = diff_data([plan], facts())
    assert online[0]["phase"] == "p" and online[0]["steps"][0]["action"] == "create"
    assert online[0]["steps"][0]["reason"] == "absent on the host"
    offline = diff_data([plan], None)
    assert offline[0]["steps"][0]["action"] == "planned"
