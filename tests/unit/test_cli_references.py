"""Every ``fab ...`` command kubefab tells an operator to type exists, with the flags it names.

The commands are read from every string of the code (fix lines, help, docstrings, printed
output; f-string fields stand for placeholders), the READMEs, the example inventory and the
scripts. Each is parsed as Fabric would: core flags, a task of the collection, that task's flags
(and core flags after it), and the phase names given to ``--only``/``--skip-phases``.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest
from fabric.main import make_program

from tasks.cli import HELP_WORDS, ns
from tasks.phases.init import INIT
from tasks.phases.join import JOIN, JOIN_CONTROL_PLANE
from tasks.phases.reset import RESET

from .test_cli_flags import task_arguments

ROOT = Path(__file__).resolve().parents[2]
PY_SOURCES = sorted([*(ROOT / "tasks").rglob("*.py"), ROOT / "fabfile.py", *(ROOT / "scripts").glob("*.py")])
TEXT_SOURCES = [ROOT / "README.md", ROOT / "tests/lab/README.md", ROOT / "fabric.yaml",
                *sorted((ROOT / "inventory").glob("*.yaml")), *sorted((ROOT / "scripts").glob("*.sh"))]
WORKFLOWS = {"init": INIT, "join": JOIN, "join-control-plane": JOIN_CONTROL_PLANE, "reset": RESET}

# "fab" as a word, then up to the end of the quoted or code span, sentence part or line
COMMAND_RE = re.compile(r"(?:^|(?<=[\s`\"'(]))fab[ \t]+([^`\"'()\n;#|]*)", re.M)
TOKEN_RE = re.compile(r"<[^>]*>|\S+")
SHELL_OPERATORS = {">", ">>", "2>", "2>&1", "&&", "||", "&"}


def _flags(arguments) -> dict[str, object]:
    return {("-" if len(n) == 1 else "--") + n: a for a in arguments for n in a.names}


_program = make_program()
CORE_FLAGS = _flags(_program.core_args() + _program.task_args())
TASK_FLAGS = {name: _flags(args) for name, args in task_arguments(ns)}
# arguments a task takes by position (certs.renew's kubeadm-style sub-command: all, or names)


def _placeholder(token: str) -> bool:
    return token.startswith(("<", "{")) or token in ("...", "…")


def python_strings(path: Path):
    """(line, text) of every string literal; an f-string's fields become ``<field>``."""
    tree = ast.parse(path.read_text(), str(path))
    inside_fstrings = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstrings:
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "<field>" for v in node.values)


def commands():
    """(where, command text) of every ``fab ...`` command in the sources."""
    found = []
    texts = [(f"{p.relative_to(ROOT)}:{line}", text) for p in PY_SOURCES for line, text in python_strings(p)]
    texts += [(str(p.relative_to(ROOT)), p.read_text()) for p in TEXT_SOURCES if p.exists()]
    for where, text in texts:
        for m in COMMAND_RE.finditer(text.replace("\\\n", " ")):
            found.append((where, "fab " + m.group(1).strip()))
    return found


def check(command: str) -> list[str]:
    """What is wrong with one command line (empty when Fabric would accept it as kubefab means it)."""
    tokens = [t.strip("[]").rstrip(".,:") for t in TOKEN_RE.findall(command)[1:]]
    tokens = [t for t in tokens if t]
    shell = [i for i, t in enumerate(tokens) if t in SHELL_OPERATORS]
    tokens = tokens[:shell[0]] if shell else tokens
    problems, task, flags, given, positional = [], None, CORE_FLAGS, {}, []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-"):
            name, eq, value = tok.partition("=")
            arg = flags.get(name) or CORE_FLAGS.get(name)
            if arg is None:
                return problems + [f"{task or 'fab'} has no flag {name}"]
            if arg.takes_value and not eq:
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                if nxt in HELP_WORDS:
                    return problems  # help, even where a value belongs (tasks.cli.KubefabExecutor)
                if nxt is not None and not (arg.optional and nxt.startswith("-")):
                    value, i = nxt, i + 1
                elif not arg.optional:
                    return problems + [f"{name} needs a value"]
            given[arg.name] = value
            if arg.name == "help" and value and not _placeholder(value) and value not in ns.task_names:
                problems.append(f"--help names no task: {value}")
        elif _placeholder(tok) and task is None:
            return problems  # a task named by a placeholder: nothing more to check
        elif "*" in tok and task is None:
            if not fnmatch.filter(ns.task_names, tok):
                problems.append(f"no task matches {tok}")
            return problems
        elif tok in ns.task_names:
            problems += _check_task(task, given)
            task, flags, given = tok, TASK_FLAGS[tok], {}
            positional = list({id(a): a for a in flags.values() if a.positional}.values())
        elif task is not None and positional:
            given[positional.pop(0).name] = tok  # a task's positional argument (etcd.restore FILE)
        else:
            return problems + [f"no task {tok!r}" if task is None else f"{task} takes no argument {tok!r}"]
        i += 1
    return problems + _check_task(task, given)


def _check_task(task: str | None, given: dict) -> list[str]:
    problems = []
    workflow = WORKFLOWS.get(task or "")
    for flag in ("only", "skip_phases"):
        value = given.get(flag)
        if workflow and isinstance(value, str) and not _placeholder(value):
            for name in value.split(","):
                try:
                    workflow.canonical(name)
                except Exception as exc:  # noqa: BLE001 (the message is the test's output)
                    problems.append(str(exc).splitlines()[0])
    # the upload-certs phase runs only with --upload-certs, as in kubeadm
    only = given.get("only")
    if task == "init" and isinstance(only, str) and "upload-certs" in only.split(",") and "upload_certs" not in given:
        problems.append("init --only upload-certs does nothing without --upload-certs")
    return problems


ALL_COMMANDS = commands()


def test_the_sources_name_commands():
    texts = {cmd for _, cmd in ALL_COMMANDS}
    assert len(ALL_COMMANDS) > 60, ALL_COMMANDS
    assert any("token.create" in t for t in texts) and any("join-control-plane" in t for t in texts)


def test_every_named_command_exists():
    bad = [(where, cmd, problems) for where, cmd in ALL_COMMANDS if (problems := check(cmd))]
    assert not bad, "\n".join(f"{where}: {cmd!r}: {'; '.join(p)}" for where, cmd, p in bad)


@pytest.mark.parametrize("command,problem", [
    ("fab token.generate", "no task 'token.generate'"),
    ("fab certs.certificate-key", "no task 'certs.certificate-key'"),
    ("fab token.delete abcdef", "token.delete takes no argument 'abcdef'"),
    ("fab -H m1 init --patch x", "init has no flag --patch"),
    ("fab -H m1 init --only certz", "invalid phase name 'certz' for init"),
    ("fab -H m1 init --only upload-certs", "init --only upload-certs does nothing without --upload-certs"),
    ("fab --help inits", "--help names no task: inits"),
])
def test_the_check_finds_bad_commands(command, problem):
    assert problem in check(command)


@pytest.mark.parametrize("command", [
    "fab -H <init host> init --only upload-certs --upload-certs",
    "fab -H worker3 join --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:<hex>",
    "fab --help init",
    "fab [-H host] certs.check-expiration",
    "fab --print-completion-script bash > ~/.fab-completion.bash",
    "fab -H <field> init --dry-run --offline --output-dir out/",
    "fab init --only -h",
])
def test_the_check_accepts_good_commands(command):
    assert check(command) == []
