"""Machine-readable output (-o json/yaml), the summary's fix lines, progress on long waits,
the log file and its redaction, and the operator's admin kubeconfig."""

from __future__ import annotations

import io
import json
import stat

import pytest
import yaml

from tasks import output
from tasks.cli import redacted_argv
from tasks.core.errors import KubefabError
from tasks.core.secrets import Secret
from tasks.pipeline import HostResult, failure_fix, report

from .test_cli import fab


@pytest.fixture
def data_format():
    """Set the output format for one test; text again afterwards."""
    def set_(fmt: str):
        output.configure(format=fmt, command="join")
    yield set_
    output.configure()


# --- -o json / -o yaml through the real fab -------------------------------------------------

@pytest.mark.parametrize("fmt,load", [("json", json.loads), ("yaml", yaml.safe_load)])
def test_offline_dry_run_plan_is_one_document_on_stdout(fmt, load, tmp_path):
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--upload-certs", "-o", fmt,
            "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 0, r.stderr
    doc = load(r.stdout)  # stdout holds the document and nothing else
    assert doc["apiVersion"] == "kubefab.dev/v1alpha1" and doc["kind"] == "RunSummary"
    assert doc["command"] == "init" and doc["dryRun"] is True and doc["result"] == "ok"
    (host,) = doc["hosts"]
    assert host["host"] == "master1" and host["result"] == "ok"
    phases = {p["phase"]: p for p in host["plan"]}
    ca_key = next(s for s in phases["certs/ca"]["steps"] if s["path"] == "/etc/kubernetes/pki/ca.key")
    assert ca_key == {**ca_key, "action": "planned", "kind": "file", "mode": "0600", "secret": True}
    assert any("ca.key" in w for w in host["stateDirWrites"])
    assert "PRIVATE KEY" not in r.stdout + r.stderr
    # the human plan still reads as before, on stderr
    assert "[certs/ca]" in r.stderr or "certs/ca" in r.stderr
    assert not (tmp_path / "state").exists()


def test_long_form_and_text_output(tmp_path):
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--output", "text", "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    assert "apiVersion" not in r.stdout and "/etc/kubernetes/pki/ca.crt" in r.stdout


def test_an_unknown_format_is_refused_before_anything(tmp_path):
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "-o", "xml", "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1
    assert "'xml' is not an output format" in r.stderr and "json, yaml" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s").exists()


def test_a_failure_reports_in_the_document_too(tmp_path):
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "-o", "json", "--only", "certz",
            "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1 and r.stdout == ""  # refused before any host: no summary to give
    assert "certz" in r.stderr


# --- RunSummary and the summary's fix line, in process -----------------------------------------

def _failed(host: str, fix: str | None) -> HostResult:
    return HostResult.failed(host, "worker", KubefabError("discovery failed", host=host, phase="preflight", fix=fix))


def test_summary_document_names_each_hosts_error_and_fix(capsys, data_format):
    data_format("json")
    ok = HostResult("w1", "worker", phases=5, changed=12, unchanged=3, seconds=2.5)
    with pytest.raises(KubefabError) as exc:
        report([ok, _failed("w2", "check --endpoint")])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["kind"] == "RunSummary" and doc["command"] == "join" and doc["result"] == "failed"
    assert doc["hosts"][0] == {"host": "w1", "role": "worker", "result": "ok", "phases": 5, "changed": 12,
                               "unchanged": 3, "seconds": 2.5, "roundTrips": 0, "bytesSent": 0,
                               "timings": []}
    assert doc["hosts"][1]["error"] == "[preflight] w2: discovery failed" and doc["hosts"][1]["fix"] == "check --endpoint"
    assert "HOST" in err and "FAILED" in err  # the table stays on stderr
    assert "check --endpoint" in exc.value.render()


@pytest.mark.parametrize("fixes,expected", [
    ([("a", "check --endpoint"), ("b", "check --endpoint")], "check --endpoint; then re-run"),
    ([("a", "check --endpoint"), ("b", "pass --token")], "a: check --endpoint; b: pass --token; then re-run"),
    ([("a", "check --endpoint"), ("b", None)], "a: check --endpoint; then re-run"),
    ([("a", None)], "read each host's error above; then re-run"),
])
def test_the_fix_line_is_each_hosts_own(fixes, expected):
    fix = failure_fix([_failed(h, f) for h, f in fixes])
    assert fix.startswith(expected) and "fix the cause" not in fix


def test_text_mode_writes_no_document(capsys):
    assert output.emit("RunSummary", {"hosts": []}) is False
    assert capsys.readouterr().out == ""


def test_human_data_goes_to_stderr_in_data_mode(capsys, data_format):
    data_format("yaml")
    output.out("TOKEN   TTL")
    output.emit("BootstrapTokenList", {"items": []})
    out, err = capsys.readouterr()
    assert yaml.safe_load(out) == {"apiVersion": "kubefab.dev/v1alpha1", "kind": "BootstrapTokenList", "items": []}
    assert "TOKEN   TTL" in err


def test_documents_are_scrubbed_unless_revealed(capsys, data_format):
    data_format("json")
    secret = Secret("abcdef.0123456789abcdef", kind="bootstrap token")
    output.emit("BootstrapTokenList", {"items": [{"token": secret.reveal()}]})
    assert "0123456789abcdef" not in capsys.readouterr().out
    output.emit("BootstrapTokenList", {"items": [{"token": secret.reveal()}]}, reveal=True)
    assert "abcdef.0123456789abcdef" in capsys.readouterr().out


# --- progress on long waits -----------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_progress_is_a_line_every_ten_seconds_per_wait():
    clock, stream = Clock(), io.StringIO()
    p = Progress = output.Progress(clock=clock, stream=stream, tty=False)
    p._ensure_thread = lambda: None  # the test ticks by hand
    token = Progress.start("Nodes Ready", ["w1", "w2"])
    clock.now += 5
    assert p.tick() == []
    clock.now += 6
    assert p.tick() == ["--> waiting for Nodes Ready on w1, w2 (11s so far)"]
    clock.now += 1
    assert p.tick() == []  # no spam: the next line after 20 s
    clock.now += 9
    assert p.tick() == ["--> waiting for Nodes Ready on w1, w2 (21s so far)"]
    p.stop(token)
    clock.now += 30
    assert p.tick() == []
    assert stream.getvalue().count("\n") == 2


def test_terminal_progress_is_one_line_rewritten_in_place():
    clock, stream = Clock(), io.StringIO()
    p = output.Progress(clock=clock, stream=stream, tty=True)
    p._ensure_thread = lambda: None
    a = p.start("kubelet TLS bootstrap", ["w1"])
    b = p.start("kubelet TLS bootstrap", ["w2"])
    c = p.start("the API server /readyz", ["m1"])
    clock.now += 4
    (line,) = p.tick()
    assert line == ("waiting for kubelet TLS bootstrap on w1, w2 (4s so far); "
                    "waiting for the API server /readyz on m1 (4s so far)")
    assert stream.getvalue().startswith("\r\033[K") and "\n" not in stream.getvalue()
    for t in (a, b, c):
        p.stop(t)
    assert stream.getvalue().endswith("\r\033[K")  # the line is gone once nothing waits
    assert not p.live


def test_a_normal_line_clears_the_progress_line(capsys, monkeypatch):
    clock = Clock()
    p = output.Progress(clock=clock, tty=True)
    p._ensure_thread = lambda: None
    monkeypatch.setattr(output, "PROGRESS", p)
    t = p.start("etcd learner promoted", ["m2"])
    clock.now += 5
    p.tick()
    output.err("[m2] [etcd] member promoted")
    err = capsys.readouterr().err
    assert err.index("member promoted") > err.rindex("\r\033[K")
    p.stop(t)


def test_waiting_runs_the_ticker_thread_and_stops_it():
    stream = io.StringIO()
    p = output.Progress(stream=stream, tty=False, after=0.0, every=0.5)
    t = p.start("something", ["h"])
    import time
    time.sleep(1.3)
    p.stop(t)
    assert "waiting for something on h" in stream.getvalue()


# --- the log file -----------------------------------------------------------------------------

def test_log_file_is_private_and_scrubbed(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "kubefab" / "kubefab.log"
    monkeypatch.setenv("KUBEFAB_LOG_FILE", str(path))
    handler = output.open_log()
    try:
        secret = Secret("s3cr3t-value-for-the-log", kind="sudo password")
        output.LOG.info("sudo password %s then a key", secret.reveal())
        output.log("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", level=1)
        handler.flush()
    finally:
        output.close_log()
    text = path.read_text()
    assert "s3cr3t-value-for-the-log" not in text and "MIIE" not in text
    assert "<redacted>" in text and "<redacted rsa private key>" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_log_path_defaults_to_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBEFAB_LOG_FILE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert output.log_path() == tmp_path / "kubefab" / "kubefab.log"
    monkeypatch.setenv("KUBEFAB_LOG_FILE", "off")
    assert output.log_path() is None


def test_a_fab_run_is_logged_with_its_secret_flags_redacted(tmp_path):
    log = tmp_path / "k.log"
    r = fab("-H", "worker1", "join", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash",
            "sha256:xyz", "--state-dir", str(tmp_path / "s"), env={"KUBEFAB_LOG_FILE": str(log)})
    assert r.returncode == 1
    text = log.read_text()
    assert "run: " in text and "--token '<redacted>'" in text and "exit 1 after" in text
    assert "0123456789abcdef" not in text


def test_redacted_argv():
    assert redacted_argv(["fab", "join", "--token", "a.b", "--certificate-key=ff", "--token"]) == \
        ["fab", "join", "--token", "<redacted>", "--certificate-key=<redacted>", "--token"]


# --- kubeconfig.admin ---------------------------------------------------------------------------

ADMIN = """apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority-data: Zm9v, server: 'https://192.0.2.10:6443'}
  name: kubernetes
contexts: []
users: []
"""


def test_admin_kubeconfig_is_written_private_from_the_state_dir(tmp_path):
    from tasks import commands
    from tasks.core.state import ClusterState

    inv = commands.load_inventory(str(commands.resolve_inventory_path("")))
    state = ClusterState(tmp_path / "state")
    with pytest.raises(KubefabError) as exc:
        commands.admin_kubeconfig(inv, state)
    assert "fab cluster-up" in exc.value.fix
    node = state.root / "nodes" / inv.first_control_plane.node_name
    node.mkdir(parents=True)
    (node / "admin.conf").write_text(ADMIN)
    path, server = commands.admin_kubeconfig(inv, state)
    assert path == state.root / "admin.conf" and server == "https://192.0.2.10:6443"
    assert path.read_text() == ADMIN and stat.S_IMODE(path.stat().st_mode) == 0o600
    other, _ = commands.admin_kubeconfig(inv, state, output_file=str(tmp_path / "kube" / "config"))
    assert other.read_text() == ADMIN and stat.S_IMODE(other.stat().st_mode) == 0o600


def test_kubeconfig_admin_prints_the_kubectl_line(tmp_path):
    from tasks import commands

    inv = commands.load_inventory(str(commands.resolve_inventory_path("")))
    node = tmp_path / "state" / "nodes" / inv.first_control_plane.node_name
    node.mkdir(parents=True)
    (node / "admin.conf").write_text(ADMIN)
    r = fab("kubeconfig.admin", "--state-dir", str(tmp_path / "state"), "--output-file", str(tmp_path / "kc"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"kubectl --kubeconfig {tmp_path / 'kc'} get nodes"
    assert f"admin kubeconfig: {tmp_path / 'kc'}" in r.stderr


# --- token.list -o json ----------------------------------------------------------------------------

def test_token_list_document(monkeypatch, capsys, data_format):
    from contextlib import contextmanager
    from datetime import datetime, timedelta, timezone

    from tasks import tokens
    from tasks.core import bootstrap
    from tasks.core.spec import BootstrapToken

    now = datetime.now(timezone.utc)
    token = BootstrapToken(token=Secret("abcdef.0123456789abcdef", kind="bootstrap token"), description="ci",
                           ttl=timedelta(hours=2))
    forever = BootstrapToken(token=Secret("zyxwvu.0123456789zyxwvu", kind="bootstrap token"), ttl=None)
    items = [bootstrap.token_secret_manifest(t, now=now) for t in (token, forever)]

    class Api:
        def request(self, method, path, query=None):
            return {"items": items}

    @contextmanager
    def fake_api(inv, state, accept_new_host_keys=False):
        yield None, Api()

    monkeypatch.setattr(tokens, "cluster_api", fake_api)
    data_format("json")
    tokens.list_tokens(None, None)
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["kind"] == "BootstrapTokenList"
    first, second = doc["items"]
    assert first["token"] == "abcdef.<redacted>" and first["tokenID"] == "abcdef" and first["description"] == "ci"
    assert first["expires"].endswith("Z") and first["expired"] is False
    assert sorted(first["usages"]) == ["authentication", "signing"]
    assert second["expires"] is None
    assert "0123456789abcdef" not in out + err and "TOKEN" in err
    tokens.list_tokens(None, None, show_secrets=True)
    assert json.loads(capsys.readouterr().out)["items"][0]["token"] == "abcdef.0123456789abcdef"


# --- fab version ---------------------------------------------------------------------------------

def test_version_without_a_cluster_connects_nowhere():
    from tasks import __version__

    r = fab("version", "-o", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "Version" and doc["kubefab"]["version"] == __version__
    assert doc["supportedKubernetesMinors"] == ["v1.33", "v1.34", "v1.35", "v1.36"]
    assert "cluster" not in doc and f"kubefab {__version__}" in r.stderr


def test_cluster_versions_of_the_named_hosts(monkeypatch):
    from contextlib import contextmanager
    from types import SimpleNamespace

    from tasks import commands, session

    inv = commands.load_inventory(str(commands.resolve_inventory_path("")))

    def node(name, v):
        return {"metadata": {"name": name}, "status": {"nodeInfo": {"kubeletVersion": v, "kubeProxyVersion": v,
                                                                    "containerRuntimeVersion": "containerd://1.7"}}}

    class Api:
        def request(self, method, path, **kw):
            return {"gitVersion": "v1.36.3"} if path == "/version" else \
                {"items": [node("worker1", "v1.35.4"), node("master1", "v1.36.3")]}

    @contextmanager
    def fake(inv_, state, connect):
        yield SimpleNamespace(control_plane_url="https://192.0.2.10:6443"), Api()

    monkeypatch.setattr(session, "cluster_api", fake)
    found = commands.cluster_versions(inv, None, ["master1", "worker1", "worker2"], connect=None)
    assert found["serverVersion"] == "v1.36.3"
    assert [(n["name"], n["kubeletVersion"]) for n in found["nodes"]] == [("master1", "v1.36.3"),
                                                                          ("worker1", "v1.35.4")]
    assert found["missingNodes"] == [inv.host("worker2").node_name]
