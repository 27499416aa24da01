"""tasks/health.py: a lost etcd quorum stops a command before it changes anything, named with
the control planes that are down; a healthy or merely starting cluster is never stopped.
Hosts are strict fakes (tests/unit/test_pipeline.py's StrictTransport)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks import health
from tasks.core.errors import KubefabError, RemoteError
from tasks.remote.transport import RunResult
from tests.unit.test_pipeline import StrictTransport

ROOT = Path(__file__).resolve().parents[2]
STATUS = r"etcdctl --endpoints=https://127\.0\.0\.1:2379 .*endpoint status -w json"


@pytest.fixture
def inv():
    from tasks.core import inventory

    return inventory.load_inventory(ROOT / "inventory" / "hosts.yaml")


def status(leader: int) -> RunResult:
    """etcdctl's JSON, where Go omits a zero field: no leader is no "leader" key."""
    doc = [{"Endpoint": "https://127.0.0.1:2379",
            "Status": {"header": {"member_id": 7}, **({"leader": leader} if leader else {})}}]
    return RunResult("", 0, json.dumps(doc), "", 0.0)


def connector(answers: dict[str, object], asked: list[str]):
    """``answers``: host -> RunResult (etcdctl's answer) or an exception raised on connect."""

    def connect(host):
        asked.append(host.name)
        answer = answers[host.name]
        if isinstance(answer, Exception):
            raise answer
        return StrictTransport([(STATUS, answer)], host=host.name)

    return connect


def down(name: str) -> RemoteError:
    return RemoteError("cannot reach 192.0.2.1:22 as root: connection refused (3 attempts in 1.5s)", host=name)


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    monkeypatch.setattr(health, "LEADER_RECHECK_SECONDS", 0.0)


def test_two_of_three_lost_names_them_and_the_fix(inv):
    asked: list[str] = []
    err = health.etcd_quorum_lost(inv, connector({"master1": status(0), "master2": down("master2"),
                                                  "master3": down("master3")}, asked))
    assert isinstance(err, KubefabError)
    text = err.render()
    assert text.startswith("[check-etcd] etcd has lost its quorum: 1 of 3 control planes run etcd (master1), "
                           "a majority needs 2; down: master2, master3. Nothing was changed")
    assert "  - master2: unreachable (cannot reach" in text and "  - master1: no-leader" in text
    assert "fix: bring back 1 of master2, master3" in text and "fab etcd.restore" in text
    assert sorted(asked) == ["master1", "master1", "master2", "master2", "master3", "master3"]  # asked twice


@pytest.mark.parametrize("answers", [
    {"master1": status(9), "master2": down("master2"), "master3": down("master3")},  # a leader: quorum there
    {"master1": status(0), "master2": status(9), "master3": status(9)},
    # nothing answers (etcd not started yet, an init that failed half-way): not for this check to judge
    {"master1": RunResult("", 1, "", "connection refused", 0.0), "master2": down("master2"),
     "master3": down("master3")},
])
def test_a_leader_anywhere_or_no_etcd_at_all_is_not_a_lost_quorum(inv, answers):
    assert health.etcd_quorum_lost(inv, connector(answers, [])) is None


def test_a_leader_elected_between_the_two_looks_is_not_a_lost_quorum(inv):
    rounds = {"master1": [status(0), status(5)], "master2": [status(0), status(5)], "master3": [down("m3")] * 2}

    def connect(host):
        answer = rounds[host.name].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return StrictTransport([(STATUS, answer)], host=host.name)

    assert health.etcd_quorum_lost(inv, connect) is None


def test_a_ready_api_asks_no_host(inv, monkeypatch, tmp_path):
    monkeypatch.setattr(health, "api_ready", lambda inv, state: None)

    def connect(host):
        raise AssertionError("no host should be asked when the API is ready")

    health.check_cluster_serves(inv, None, connect)


def test_an_unready_api_with_a_lost_quorum_stops_the_command(inv, monkeypatch):
    monkeypatch.setattr(health, "api_ready", lambda inv, state: "reading cluster-info answered 504")
    with pytest.raises(KubefabError, match="etcd has lost its quorum"):
        health.check_cluster_serves(inv, None, connector({"master1": status(0), "master2": down("master2"),
                                                          "master3": down("master3")}, []))


def test_api_ready_without_a_ca_in_the_state_dir_is_not_checked(inv, tmp_path):
    from tasks.core.state import ClusterState

    assert health.api_ready(inv, ClusterState(tmp_path / "state")) is None
