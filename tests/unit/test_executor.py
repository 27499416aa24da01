"""The executor (:func:`tasks.apply.execute`) with the strict fake transport: host phases are
batched into one apply, consecutive host-side waits share one round trip, closing words are
returned for the pipeline, and a failed wait names the URL and its last answer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tasks.core.errors import KubefabError
from tasks.core.plan import Command, FileWrite, Message, Plan, Wait
from tasks.phases.workflow import HOST, OPERATOR, Phase, Workflow
from tests.unit.test_pipeline import Ctx, StrictTransport, _facts, ok


def _run(plans_by_phase, fake):
    from tasks.apply import execute
    from tasks.pipeline import HostResult
    from tasks.runner import plan_step

    wf = Workflow("t", tuple(Phase(name, name, run=lambda c, p=plan: p, where=where)
                             for name, (plan, where) in plans_by_phase.items()))
    steps = wf.select()
    ctx = Ctx(facts=_facts(**{"/x": False}))
    result = HostResult("fake", "t")
    return execute(ctx, fake, steps, [plan_step(s, ctx) for s in steps], result, replan=plan_step), result


def _waits():
    return Plan("wait", "fake", [Wait("kubelet-healthz", "http://127.0.0.1:10248/healthz", timedelta(seconds=5)),
                                 Wait("component-healthz", "https://127.0.0.1:10257/healthz", timedelta(seconds=5))])


def test_host_phases_are_one_apply_and_consecutive_waits_one_round_trip():
    files = Plan("files", "fake", [FileWrite("/etc/a", b"a"), Command(("true",), "then this")])
    more = Plan("more", "fake", [FileWrite("/etc/b", b"b")])
    bye = Plan("bye", "fake", [Message("done")])
    fake = StrictTransport([(r"sh -c .*10248/healthz.*10257/healthz", ok("ok 1\nok 2"))], allow_apply=True)
    messages, _ = _run({"files": (files, HOST), "more": (more, HOST), "wait": (_waits(), HOST),
                        "bye": (bye, OPERATOR)}, fake)
    assert len(fake.applied) == 1 and [p.phase for p in fake.applied[0]] == ["files", "more"]
    assert len(fake.calls) == 1 and fake.stats.count == 2  # one apply, one round trip for both waits
    assert not fake.expect and [m.text for m in messages] == ["done"]


def test_a_failed_host_wait_names_the_url_and_its_last_answer():
    fake = StrictTransport([(r"sh -c .*10248/healthz", failed_wait()),
                            (r"journalctl|kubelet", ok("--- kubelet (last 15 lines)\nsome log line"))])
    with pytest.raises(KubefabError) as exc:
        _run({"wait": (_waits(), HOST)}, fake)
    assert "https://127.0.0.1:10257/healthz did not become healthy within 5s" in exc.value.problem
    assert exc.value.phase == "wait" and exc.value.host == "fake"
    assert "last answer: HTTP 500" in exc.value.details and "some log line" in exc.value.details


def failed_wait():
    from tasks.remote.transport import RunResult

    return RunResult("", 1, "ok http://127.0.0.1:10248/healthz\nfailed https://127.0.0.1:10257/healthz\n"
                              "last answer: HTTP 500", "", 0.0)
