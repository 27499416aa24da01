"""Fuzzing what kubefab reads (issue 15): the inventory, the kubeadm config, the join flags and
the state directory's files.

Mutations of the example inventory and of kubeadm configs of every kind and field kubefab reads
(v1beta4 and v1beta3): values replaced by lists, maps, huge or deep values, YAML junk (aliases
expanded a billion times, tags, binary bytes), keys dropped, renamed or duplicated, files cut
short. The property, for every input:

- success for valid input, else a :class:`KubefabError` (exit code 1 on the command line) whose
  one message names the file and the field (or host, or line), with one ``fix:`` line;
- never another exception (no traceback), within bounded time and memory;
- nothing written anywhere when it fails.

Most examples call the loading functions and ``commands.init`` in-process (fast); a handful run
the real ``fab`` in a subprocess under a memory limit. The unit suite runs a small, fixed
(derandomized) budget in a few seconds; ``make fuzz`` runs thousands (``KUBEFAB_FUZZ_EXAMPLES``)
and prints the figures: examples run, classes of errors found, the slowest case.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, example, given, note, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from tasks import commands
from tasks.core.config.validate import CA_CERT_HASH_RE, CERTIFICATE_KEY_RE, TOKEN_RE, check_command_line
from tasks.core import pki, secrets
from tasks.core.errors import KubefabError
from tasks.core.inventory import load_inventory
from tasks.core.secrets import Secret
from tasks.phases.context import Options
from tests.unit.test_offline_init import seed_state

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "config"
FUZZ = int(os.environ.get("KUBEFAB_FUZZ_EXAMPLES", "0") or 0)
SECONDS = 10.0                 # per in-process example (a billion laughs once ran for 400 s)
CLI_SECONDS = 90               # per `fab` run
CLI_MEMORY = 512 << 20        # address space of a `fab` run (one grew to 2 GB; a clean one takes ~50 MB)


# --- the figures `make fuzz` prints ------------------------------------------------------------
@dataclass
class Figures:
    examples: Counter = field(default_factory=Counter)   # per test
    classes: Counter = field(default_factory=Counter)    # error classes (values masked)
    slowest: tuple[float, str] = (0.0, "")

    def record(self, test: str, seconds: float, outcome: str) -> None:
        self.examples[test] += 1
        self.classes[outcome] += 1
        if seconds > self.slowest[0]:
            self.slowest = (seconds, f"{test}: {outcome}")

    def report(self) -> str:
        lines = [f"fuzz: {sum(self.examples.values())} examples "
                 f"({', '.join(f'{t} {n}' for t, n in sorted(self.examples.items()))})",
                 f"fuzz: slowest {self.slowest[0]:.2f}s ({self.slowest[1]})",
                 f"fuzz: {len(self.classes)} outcome classes:"]
        lines += [f"  {n:6d}  {c}" for c, n in self.classes.most_common()]
        return "\n".join(lines)


FIGURES = Figures()


@pytest.fixture(scope="module", autouse=True)
def _print_figures():
    yield
    if FUZZ:
        sys.stderr.write("\n" + FIGURES.report() + "\n")
        report = os.environ.get("KUBEFAB_FUZZ_REPORT")
        if report:
            Path(report).write_text(FIGURES.report() + "\n")


def budget(unit: int, *, fuzz: int | None = None) -> settings:
    """``unit`` examples in the unit suite (fixed seed: the same inputs every run), thousands
    under ``make fuzz``."""
    if FUZZ:
        return settings(max_examples=fuzz or FUZZ, deadline=None, print_blob=True,
                        suppress_health_check=list(HealthCheck),
                        database=DirectoryBasedExampleDatabase(str(ROOT / ".hypothesis")))
    phases = [Phase.explicit, Phase.generate, Phase.shrink] if unit else [Phase.explicit]
    return settings(max_examples=max(unit, 1), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), phases=phases)


def outcome_class(exc: KubefabError | None) -> str:
    """``ok``, or the error's first line with file names, positions, paths and values masked."""
    if exc is None:
        return "ok"
    line = (exc.details[0] if exc.details else exc.problem).splitlines()[0]
    line = re.sub(r"^(\S+: )?(line \d+, column \d+: )?", "", line)
    line = re.sub(r"/\S*/", "", line)  # temp dirs
    line = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", line)
    line = re.sub(r"\b(InitConfiguration|ClusterConfiguration|JoinConfiguration|hosts|cluster|ssh)\.(?!yaml\b)[\w.\[\]-]+",
                  r"\1.<field>", line)
    line = re.sub(r"\d+", "N", line)
    return f"{type(exc).__name__}: {line[:110]}"


# --- what is mutated -------------------------------------------------------------------------------
def _docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _patches_here(doc: dict) -> dict:
    """The fixture's patches.directory is a node's; patches are read on this machine (see README)."""
    if isinstance(doc.get("patches"), dict):
        doc["patches"]["directory"] = str(ROOT / "tests" / "fixtures" / "patches-none")
    return doc


INVENTORY = yaml.safe_load((ROOT / "inventory" / "hosts.yaml").read_text())
EXTRA_DOCS = [
    {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "UpgradeConfiguration",
     "apply": {"forceUpgrade": True}},
]
EXTERNAL_ETCD = {
    "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
    "etcd": {"external": {"endpoints": ["https://192.0.2.50:2379"], "caFile": "/etc/etcd/ca.crt",
                          "certFile": "/etc/etcd/client.crt", "keyFile": "/etc/etcd/client.key"}},
    "networking": {"podSubnet": "10.244.0.0/16"},
}
JOIN_FILE = {
    "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
    "discovery": {"file": {"kubeConfigPath": "https://192.0.2.10/cluster-info.yaml"}},
    "nodeRegistration": {"taints": [], "ignorePreflightErrors": ["all"]},
}
# every kind and field kubefab reads, v1beta4 and v1beta3 (see tests/fixtures/config/README.md)
KUBEADM = {
    "example": _docs(ROOT / "inventory" / "kubeadm.yaml"),
    "v1beta4-full": [_patches_here(d) for d in _docs(FIXTURES / "v1beta4-full.yaml")] + EXTRA_DOCS,
    "v1beta3-full": _docs(FIXTURES / "v1beta3-full.yaml"),
    "external-etcd": [EXTERNAL_ETCD, JOIN_FILE],
}

RAW_SNIPPETS = [  # YAML written as is where a value goes: what a tree of Python values cannot say
    "9" * 5000,                               # ValueError: Exceeds the limit (4300 digits)
    "99999999999999999999999",                # beyond int64
    "0x" + "f" * 40,
    "1e400",
    "[" * 3000 + "]" * 3000,                  # RecursionError
    "{a: " * 400 + "1" + "}" * 400,
    "&self [*self]",                          # a recursive alias
    "*nosuchalias",
    "!!binary aGVsbG8=",
    "!!set {a: null}",
    "!!python/object/apply:os.system [id]",
    "!!float x",
    "2024-13-45",
    ".nan",
    "'" + "x" * 70_000 + "'",
    "{[a]: 1}",
    "[[a], {b: c}]",
]
LAUGHS = "".join([f"lol0: &l0 [{', '.join(['lol'] * 10)}]\n"]
                 + [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)])
NASTY_STRINGS = ["", " ", "master1", "v1.34.2", "1.35", "10.96.0.0/12", "10.96.0.0/30", "192.0.2.1:6443",
                 "[2001:db8::1]", "::", "0.0.0.0", "127.0.0.1", "unix:///run/x.sock", "tcp://x", "-1", "a" * 300,
                 "abcdef.0123456789abcdef", "sha256:" + "0" * 64, "8760h", "2562048h", "-1h", "1e9h",
                 "9" * 30 + "h", "RSA-4096", "ECDSA-P384", "NoSchedule", "/etc/x", "relative/x", "https://x",
                 "system:bootstrappers:x", "ÿ\u202e", "\x00\x07", "%(x)s{x}", "*.example.com", "Swap", "all"]


@dataclass(frozen=True)
class Raw:
    """YAML text to put in place of a value."""

    text: str


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
    st.sampled_from(NASTY_STRINGS), st.datetimes(timezones=st.none()),
)
JUNK = st.one_of(
    SCALARS,
    st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids,
                                                                                       max_size=3), max_leaves=6),
    st.sampled_from(RAW_SNIPPETS).map(Raw),
)


def _paths(tree, prefix=()):
    """Every (path, value) below ``tree`` (mapping keys and list positions)."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        yield prefix + (key,), value
        yield from _paths(value, prefix + (key,))


def _parent(tree, path):
    for key in path[:-1]:
        tree = tree[key]
    return tree


def _dump(tree, raws: dict[str, str], *, multi: bool) -> str:
    def unraw(node):
        if isinstance(node, Raw):
            token = f"RAWVALUE{len(raws)}X"
            raws[token] = node.text
            return token
        if isinstance(node, dict):
            return {k: unraw(v) for k, v in node.items()}
        if isinstance(node, list):
            return [unraw(v) for v in node]
        return node

    tree = unraw(tree)
    opts = dict(sort_keys=False, default_flow_style=False, allow_unicode=False, width=1 << 20)
    text = yaml.safe_dump_all(tree, **opts) if multi else yaml.safe_dump(tree, **opts)
    for token, raw in raws.items():
        text = text.replace(token, raw)
    return text


@dataclass(frozen=True)
class Case:
    """One input: the inventory and kubeadm config files, and the words a message may name."""

    label: str
    inventory: str | bytes
    kubeadm: str | bytes
    words: tuple[str, ...] = ()

    def __repr__(self) -> str:  # hypothesis prints the failing case: keep it readable
        return f"Case({self.label!r}, words={self.words!r})"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))


def example_case(label: str, *, inventory: str | bytes | None = None, kubeadm: str | bytes | None = None,
                 words: tuple[str, ...] = ()) -> Case:
    inv = inventory if inventory is not None else (ROOT / "inventory" / "hosts.yaml").read_text()
    cfg = kubeadm if kubeadm is not None else (ROOT / "inventory" / "kubeadm.yaml").read_text()
    return Case(label, inv, cfg, words)


def _inventory_with(**cluster) -> str:
    inv = copy.deepcopy(INVENTORY)
    inv["cluster"].update(cluster)
    return yaml.safe_dump(inv, sort_keys=False)


EXAMPLE_INVENTORY = (ROOT / "inventory" / "hosts.yaml").read_text()
# the classes the fuzzer found, as seeds of the corpus
SEEDS = [
    example_case("list where a string goes", inventory=EXAMPLE_INVENTORY.replace("name: example", "name: [example]"),
                 words=("cluster.name",)),
    example_case("map as kind", kubeadm="apiVersion: kubeadm.k8s.io/v1beta4\nkind: {a: 1}\n", words=("kind",)),
    example_case("list as apiVersion", kubeadm="apiVersion: [kubeadm.k8s.io/v1beta4]\nkind: InitConfiguration\n",
                 words=("apiVersion",)),
    example_case("map as feature gate name", inventory=EXAMPLE_INVENTORY.replace(
                 "  controlPlaneEndpoint:", "  featureGates: {{a: 1}: true}\n  controlPlaneEndpoint:"),
                 words=("featureGates",)),
    example_case("deep nesting", inventory=EXAMPLE_INVENTORY.replace("name: example", "name: " + "[" * 5000 + "]" * 5000),
                 words=("cluster.name",)),
    example_case("huge integer", inventory=EXAMPLE_INVENTORY.replace("port: 22", "port: " + "9" * 5000),
                 words=("ssh.port",)),
    example_case("int64 overflow", kubeadm=(ROOT / "inventory" / "kubeadm.yaml").read_text()
                 .replace("bindPort: 6443", "bindPort: 99999999999999999999"), words=("bindPort",)),
    example_case("huge duration", inventory=_inventory_with(certificateValidityPeriod="9" * 40 + "h"),
                 words=("certificateValidityPeriod",)),
    example_case("binary junk", kubeadm=b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: \x00\x01\xfe\xff\n"),
    example_case("binary junk, valid UTF-8", kubeadm="apiVersion: \x00\x01\x02\n"),
    example_case("billion laughs", inventory=EXAMPLE_INVENTORY + LAUGHS),
    example_case("billion laughs in the kubeadm config",
                 kubeadm=(ROOT / "inventory" / "kubeadm.yaml").read_text() + LAUGHS),
    example_case("recursive alias", kubeadm="apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
                                            "apiServer: &a {certSANs: [*a]}\n"),
    example_case("huge value", inventory=EXAMPLE_INVENTORY.replace("name: example", "name: " + "x" * 100_000),
                 words=("cluster.name",)),
    example_case("huge file", inventory=EXAMPLE_INVENTORY + "#" * (2 << 20)),
    example_case("duplicate keys", inventory=EXAMPLE_INVENTORY.replace("  master2:", "  master1:\n    address: x\n"
                                                                                     "  master2:"),
                 words=("master1",)),
    example_case("duplicate keys in the kubeadm config",
                 kubeadm=(ROOT / "inventory" / "kubeadm.yaml").read_text() + "clusterName: again\n",
                 words=("clusterName",)),
    example_case("truncated", kubeadm=(ROOT / "inventory" / "kubeadm.yaml").read_text()[:700]),
    example_case("kubelet config of the wrong shape",
                 kubeadm="apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
                         "authentication: {anonymous: 5}\nfeatureGates: [a]\n",
                 words=("authentication", "featureGates")),
    example_case("kube-proxy config of the wrong shape",
                 kubeadm="apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                         "clientConnection: [x]\n", words=("clientConnection",)),
    example_case("the example, unchanged"),
]


@st.composite
def config_cases(draw) -> Case:
    """The example inventory with one kubeadm config, 1-3 tree mutations and maybe a text one."""
    base = draw(st.sampled_from(sorted(KUBEADM)))
    trees = {"inventory": copy.deepcopy(INVENTORY), "kubeadm": copy.deepcopy(KUBEADM[base])}
    target = draw(st.sampled_from(sorted(trees)))
    tree = trees[target]
    words: list[str] = []
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p, _ in _paths(tree)]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(tree, path), path[-1]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "rename", "edit"]))
        words += [str(k) for k in path if isinstance(k, str)]
        ops.append(f"{op} {'.'.join(map(str, path))}")
        if op == "replace":
            parent[key] = draw(JUNK)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            new = draw(st.sampled_from(["x", "extra", str(key).upper(), str(key) + "s"]))
            parent[new] = draw(JUNK)
            words.append(new)
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from([str(key)[:-1], str(key).lower(), str(key) + "_", "0"])) or "_"
            parent[new] = parent.pop(key)
            words.append(new)
        elif op == "edit" and isinstance(parent[key], str):
            text = parent[key]
            cut = draw(st.integers(0, len(text)))
            parent[key] = text[:cut] + draw(st.sampled_from(["", "x", " ", ":", "/", "\n", "::1", ".."]))
        else:
            parent[key] = draw(JUNK)
    raws: dict[str, str] = {}
    texts: dict[str, str | bytes] = {
        "inventory": _dump(trees["inventory"], raws, multi=False),
        "kubeadm": _dump(trees["kubeadm"], raws, multi=True),
    }
    text_op = draw(st.sampled_from([None] * 6 + ["duplicate", "truncate", "binary", "laughs"]))
    if text_op:
        text = texts[target]
        lines = text.splitlines(keepends=True)
        if text_op == "duplicate" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "".join(lines)
        elif text_op == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
        elif text_op == "binary":
            at = draw(st.integers(0, len(text)))
            junk = draw(st.binary(min_size=1, max_size=8))
            text = text.encode()[:at] + junk + text.encode()[at:]
        elif text_op == "laughs":
            text = text + ("\n" if not text.endswith("\n") else "") + LAUGHS
        texts[target] = text
        ops.append(f"text: {text_op}")
    # the inventory always points at the kubeadm file of the case
    inventory = texts["inventory"]
    return Case(f"{base}: {target}: {'; '.join(ops)}", inventory, texts["kubeadm"], tuple(dict.fromkeys(words)))


# --- the property -------------------------------------------------------------------------------------
def assert_clean(exc: KubefabError, *, files: tuple[str, ...], words: tuple[str, ...]) -> None:
    """One message, naming the file and the field, host or line, with one ``fix:`` line."""
    text = exc.render()
    lines = text.splitlines()
    assert "Traceback" not in text
    assert sum(line.startswith("  fix: ") for line in lines) == 1 and exc.fix and exc.fix.strip(), text
    assert any(f in text for f in files), f"the message names none of {files}:\n{text}"
    # "<file>: <field.path>: problem", "<file>: line L, column C: ...", a flag, a mutated key, or
    # a problem of the whole file
    named = (re.search(r"\.(yaml|conf|key|crt|pub): [^\s:]+: |line \d+|--[a-z-]+|command line: |larger than", text)
             or any(w and w in text for w in words) or exc.host)
    assert named, f"the message names neither a field, a line nor any of {words}:\n{text}"


@contextlib.contextmanager
def isolated_secrets():
    """Secrets a case registers for scrubbing (a mutated token may be "master1") stay in it."""
    before = set(secrets._REGISTRY)
    try:
        yield
    finally:
        with secrets._LOCK:
            secrets._REGISTRY.intersection_update(before)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*"))}


def write(path: Path, data: str | bytes) -> None:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape"))


def write_case(root: Path, case: Case) -> Path:
    write(root / "hosts.yaml", case.inventory)
    write(root / "kubeadm.yaml", case.kubeadm)
    return root / "hosts.yaml"


def load_everything(inventory: Path) -> None:
    """What every command loads: the inventory, and each host's kubeadm config (init and join)."""
    inv = load_inventory(inventory)
    for host in inv.hosts:
        inv.kubeadm_config(host)
        inv.kubeadm_config(host, join=True)


def timed(test: str, fn) -> KubefabError | None:
    started, keygen = time.monotonic(), KEYGEN_SECONDS[0]
    error = None
    with isolated_secrets():
        try:
            fn()
        except KubefabError as exc:
            error = exc
    seconds = time.monotonic() - started - (KEYGEN_SECONDS[0] - keygen)
    outcome = outcome_class(error)
    event(outcome)
    note(f"{seconds:.2f}s {outcome}")
    FIGURES.record(test, seconds, outcome)
    assert seconds < SECONDS, f"took {seconds:.1f}s"
    return error


def with_seeds(seeds):
    def wrap(fn):
        for case in reversed(seeds):
            fn = example(case=case)(fn)
        return fn
    return wrap


@with_seeds(SEEDS)
@budget(120)
@given(case=config_cases())
def test_config_inputs_load_or_fail_cleanly(case):
    with tempfile.TemporaryDirectory(prefix="kubefab-fuzz-") as d:
        root = Path(d)
        inventory = write_case(root, case)
        before = snapshot(root)
        error = timed("config", lambda: load_everything(inventory))
        assert snapshot(root) == before, "loading wrote something"
    if error is not None:
        assert_clean(error, files=("hosts.yaml", "kubeadm.yaml"), words=case.words)


# --- init end to end, in-process ---------------------------------------------------------------------
KEYGEN_SECONDS = [0.0]  # time spent making the cached keys: not the example's (RSA-4096 takes seconds)


@lru_cache(maxsize=None)
def _key(algorithm: str):
    started = time.monotonic()
    key = _real_generate_private_key(algorithm)
    KEYGEN_SECONDS[0] += time.monotonic() - started
    return key


_real_generate_private_key = pki.generate_private_key


@contextlib.contextmanager
def fast_keys():
    """One key per algorithm for the whole run: RSA generation would dominate every example."""
    pki.generate_private_key = _key
    try:
        yield
    finally:
        pki.generate_private_key = _real_generate_private_key


def offline_init(inventory: Path, state: Path, out: Path, *, certificate_key: str | None = None,
                 upload_certs: bool = True) -> None:
    options = Options(dry_run=True, offline=True, upload_certs=upload_certs, inventory_path=str(inventory),
                      certificate_key=Secret(certificate_key, kind="certificate key") if certificate_key else None)
    with fast_keys(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        commands.init(hosts=["master1"], options=options, state_dir=str(state), output_dir=str(out))


@with_seeds([s for s in SEEDS if s.label in ("kubelet config of the wrong shape", "the example, unchanged",
                                             "kube-proxy config of the wrong shape", "huge duration")])
@budget(6, fuzz=max(FUZZ // 10, 20))
@given(case=config_cases())
def test_offline_init_succeeds_or_writes_nothing(case):
    with tempfile.TemporaryDirectory(prefix="kubefab-fuzz-") as d:
        root = Path(d)
        inventory = write_case(root, case)
        before = snapshot(root)
        state, out = root / "state", root / "out"
        error = timed("init", lambda: offline_init(inventory, state, out))
        if error is not None:
            assert snapshot(root) == before, "a failed init wrote files"
            assert_clean(error, files=("hosts.yaml", "kubeadm.yaml", "state"), words=case.words)
        else:
            assert (out / "plan.json").exists()


# --- the state directory ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_state(tmp_path_factory) -> Path:
    """A state dir after a successful offline init (with --upload-certs: join.yaml has a key)."""
    root = tmp_path_factory.mktemp("fuzz-state")
    write_case(root, example_case("example"))
    with fast_keys():  # a dry-run writes nothing: the state is made as a run's store commits it
        seed_state(root / "state", inventory_path=root / "hosts.yaml")
    return root / "state"


@dataclass(frozen=True)
class StateCase:
    label: str
    changes: tuple[tuple[str, bytes | None], ...] = ()   # relative path -> new bytes (None: delete)
    certificate_key: str | None = None                   # --certificate-key

    def __repr__(self) -> str:
        return f"StateCase({self.label!r})"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))


STATE_FILES = ["join.yaml", "pki/ca.key", "pki/ca.crt", "pki/sa.key", "pki/sa.pub", "pki/front-proxy-ca.key",
               "pki/etcd/ca.key", "nodes/master1/pki/apiserver.key", "nodes/master1/pki/apiserver.crt",
               "nodes/master1/admin.conf", "nodes/master1/kubelet.conf"]
STATE_SEEDS = [
    StateCase("corrupted join.yaml: the issue's bad certificate key", (("join.yaml", b"certificate_key: xyz\n"),)),
    StateCase("join.yaml: binary junk", (("join.yaml", b"\xff\xfe\x00tokens: [\x01]"),)),
    StateCase("join.yaml: a list of maps as tokens", (("join.yaml", b"tokens: [{a: 1}, [b]]\n"),)),
    StateCase("join.yaml: billion laughs", (("join.yaml", LAUGHS.encode()),)),
    StateCase("truncated CA key", (("pki/ca.key", None), ("pki/ca.key", b"-----BEGIN PRIVATE KEY-----\nMIIE")),),
    StateCase("truncated leaf key, another leaf missing",
              (("nodes/master1/pki/apiserver.key", b"-----BEGIN EC PRIVATE KEY-----\n"),
               ("nodes/master1/pki/front-proxy-client.crt", None), ("nodes/master1/pki/front-proxy-client.key", None))),
    StateCase("truncated kubeconfig, another missing",
              (("nodes/master1/admin.conf", b"apiVersion: v1\nclusters:\n- cluster: {"),
               ("nodes/master1/scheduler.conf", None))),
    StateCase("the issue's malformed --certificate-key", certificate_key="xyz"),
    StateCase("a --certificate-key that YAML would read as a number", certificate_key="1" * 64),
    StateCase("unchanged"),
]


@st.composite
def state_cases(draw) -> StateCase:
    changes = []
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(STATE_FILES))
        how = draw(st.sampled_from(["truncate", "truncate", "junk", "delete", "yaml"]))
        changes.append((name, how, draw(st.integers(0, 4000)), draw(st.binary(max_size=16)), draw(JUNK)))
    key = draw(st.one_of(st.none(), st.sampled_from(["", "xyz", "g" * 64, "A" * 64, "a" * 63, " " + "a" * 64]),
                         st.text(max_size=70)))
    return StateCase("; ".join(f"{how} {name}" for name, how, *_ in changes), tuple(changes), key)


def _apply(state: Path, case: StateCase) -> None:
    for change in case.changes:
        name, *rest = change
        path = state / name
        if len(rest) == 1:            # a seed: bytes or None
            data = rest[0]
        else:                         # drawn: how, cut, junk bytes, junk value
            how, cut, junk, value = rest
            old = path.read_bytes() if path.exists() else b""
            data = {"truncate": old[:cut % (len(old) + 1)], "junk": old[:cut % (len(old) + 1)] + junk,
                    "delete": None}.get(how, _dump({"tokens": value, "certificate_key": value}, {}, multi=False)
                                        .encode("utf-8", "surrogateescape"))
        if data is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@with_seeds(STATE_SEEDS)
@budget(4, fuzz=max(FUZZ // 10, 20))
@given(case=state_cases())
def test_state_dir_damage_is_reported_and_never_spread(case, good_state):
    with tempfile.TemporaryDirectory(prefix="kubefab-fuzz-") as d:
        root = Path(d)
        inventory = write_case(root, example_case("example"))
        state = root / "state"
        shutil.copytree(good_state, state)
        _apply(state, case)
        before = snapshot(root)
        error = timed("state", lambda: offline_init(inventory, state, root / "out",
                                                    certificate_key=case.certificate_key))
        if error is not None:
            assert snapshot(root) == before, "a failed init changed the state dir or wrote output"
            # a PEM file has no fields: naming the file is naming the place
            assert_clean(error, files=("state", "--certificate-key"),
                         words=tuple(Path(name).name for name, *_ in case.changes))


# --- the join flags ---------------------------------------------------------------------------------
@st.composite
def join_flags(draw):
    token = draw(st.one_of(st.none(), st.just("abcdef.0123456789abcdef"), st.text(max_size=30),
                           st.sampled_from(NASTY_STRINGS)))
    hashes = draw(st.lists(st.one_of(st.just("sha256:" + "ab" * 32), st.text(max_size=80),
                                     st.sampled_from(NASTY_STRINGS)), max_size=2))
    endpoint = draw(st.one_of(st.just(""), st.just("192.0.2.10:6443"), st.just("[2001:db8::1]:6443"),
                              st.text(max_size=40), st.sampled_from(NASTY_STRINGS)))
    key = draw(st.one_of(st.none(), st.just("ab" * 32), st.text(max_size=70), st.sampled_from(NASTY_STRINGS)))
    return token, tuple(hashes), endpoint, key


@example(flags=("abcdef.0123456789abcdef", ("sha256:" + "ab" * 32,), "192.0.2.10:6443", "ab" * 32))
@example(flags=("master1", ("sha256:xyz",), "192.0.2.10", "xyz"))
@budget(150)
@given(flags=join_flags())
def test_join_flags_are_checked_before_anything(flags):
    token, hashes, endpoint, key = flags
    valid = ((token is None or TOKEN_RE.match(token)) and all(CA_CERT_HASH_RE.match(h)
             for h in hashes) and (key is None or CERTIFICATE_KEY_RE.match(key)))
    error = timed("flags", lambda: check_command_line(
        token=Secret(token, kind="bootstrap token") if token is not None else None, ca_cert_hashes=hashes,
        endpoint=endpoint, certificate_key=Secret(key, kind="certificate key") if key is not None else None))
    if error is not None:
        assert_clean(error, files=("command line",), words=())
        for secret in (token, key):
            if secret and len(secret) >= 6 and not any(secret in v for v in (endpoint, *hashes)):
                assert secret not in error.render().replace("<redacted>", ""), "a credential was echoed"
    else:
        assert valid


# --- the real `fab`, in a subprocess ------------------------------------------------------------------
def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))


def fab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("KUBEFAB_INVENTORY", None)
    return subprocess.run([sys.executable, "-m", "fabric", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=CLI_SECONDS, preexec_fn=_limit_memory, stdin=subprocess.DEVNULL)


CLI_SEEDS = [s for s in SEEDS if s.label in ("billion laughs", "deep nesting", "huge integer", "binary junk",
                                             "map as kind")]


@with_seeds(CLI_SEEDS)
@budget(0, fuzz=max(FUZZ // 50, 10))
@given(case=config_cases())
def test_fab_init_dry_run_offline_exits_cleanly(case):
    with tempfile.TemporaryDirectory(prefix="kubefab-fuzz-") as d:
        root = Path(d)
        inventory = write_case(root, case)
        before = snapshot(root)
        started = time.monotonic()
        r = fab("-H", "master1", "init", "--dry-run", "--offline", "--inventory", str(inventory),
                "--state-dir", str(root / "state"), "--output-dir", str(root / "out"), cwd=root)
        seconds = time.monotonic() - started
        FIGURES.record("fab", seconds, f"exit {r.returncode}")
        assert r.returncode in (0, 1), r.stderr[-3000:]
        assert "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
        if r.returncode == 1:
            assert "  fix: " in r.stderr and ("hosts.yaml" in r.stderr or "kubeadm.yaml" in r.stderr), r.stderr
            assert snapshot(root) == before, "a failed run wrote files"


def test_fab_refuses_a_bad_certificate_key_before_writing(tmp_path):
    """The issue's case: `--certificate-key xyz` once landed in join.yaml and broke every later run."""
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--upload-certs", "--certificate-key", "xyz",
            "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert r.returncode == 1 and "--certificate-key" in r.stderr and "  fix: " in r.stderr, r.stderr
    assert "xyz" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "state").exists()


def test_fab_prompt_for_sudo_password_without_a_terminal(tmp_path):
    """No terminal, nothing on stdin: a clean error saying how to give the password, before any write."""
    r = subprocess.run(["setsid", sys.executable, "-m", "fabric", "-H", "master1", "init", "--prompt-for-sudo-password",
                        "--state-dir", str(tmp_path / "state")], cwd=ROOT, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=CLI_SECONDS, env={**os.environ, "NO_COLOR": "1"})
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "terminal" in r.stderr and "NOPASSWD" in r.stderr, r.stderr
    assert not (tmp_path / "state").exists()
