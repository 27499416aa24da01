"""The phase table and kubeadm's selection rules.

kubeadm drives ``init`` and ``join`` from one table of phases: it runs them, filters them
(``kubeadm init phase certs``), skips them (``--skip-phases``) and prints them in ``--help``.
kubefab does the same with :class:`Phase` and :class:`Workflow`:

- a phase has a name, a one-line help, optional child phases and, for leaves, a pure ``run``
  function ``run(ctx) -> Plan``; a parent runs its children in order;
- paths join names with ``/`` (``certs/apiserver``, ``addon/kube-proxy``);
- ``only`` and ``skip`` each name phases with all their children; skip beats only;
- ``<parent>/all`` means the parent (kubeadm generates an ``all`` sub-command for it);
- an unknown name is an error listing every valid one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ..core.errors import ConfigError
from ..core.plan import Plan

RunFn = Callable[[Any], Plan]
ProbeFn = Callable[[Any], Iterable[str]]

# where a phase's steps run (checked by the executor, step by step)
HOST = "host"          # files, commands and host-side waits, over the host's transport
API = "api"            # API objects and API waits, through the API client (the node's admin.conf)
OPERATOR = "operator"  # nothing on the host or the cluster: checks from facts, closing words
WHERE = (HOST, API, OPERATOR)


@dataclass(frozen=True)
class Refresh:
    """Facts a phase reads again right before it is applied, because an earlier step of the
    same run changes them: the executor waits up to ``wait_seconds`` for ``paths`` to exist on
    the host (one round trip, none when the facts already saw them) and re-plans the phase
    with the refreshed facts (kubelet-finalize: the kubelet's rotated client certificate)."""

    paths: tuple[str, ...]
    wait_seconds: int = 0


@dataclass(frozen=True)
class Phase:
    """One node of the phase tree.

    :param name: kubeadm's name, kebab-case (``mark-control-plane``).
    :param help: one line, shown in ``--help`` and in plans.
    :param run: for a leaf, ``run(ctx) -> Plan``; parents leave it ``None``.
    :param phases: children, in execution order.
    :param aliases: other accepted spellings of the name (``addons`` for kubeadm's ``addon``).
    :param run_if: a predicate on the context; a phase whose predicate is false is reported as
        skipped with ``skip_reason`` (kubeadm's ``RunIf``).
    :param where: where its steps run: ``host``, ``api`` or ``operator`` (children inherit it).
    :param needs: what must exist before it runs (``pki``, ``kubelet``, ``api``...): given by
        the command's inputs (:attr:`Workflow.given`) or produced by an earlier phase. Checked
        when the table is built; a selected phase whose producer is not selected gets a note
        that it relies on an earlier run.
    :param produces: what it makes, for the phases after it (children inherit it).
    :param probes: ``probes(ctx) -> paths`` whose facts it reads or whose files it writes;
        the facts probe asks for the union of the selected phases' paths, once per host.
    :param refresh: facts to read again right before it is applied (:class:`Refresh`).
    """

    name: str
    help: str
    run: RunFn | None = None
    phases: tuple["Phase", ...] = ()
    aliases: tuple[str, ...] = ()
    run_if: Callable[[Any], bool] | None = None
    skip_reason: str = ""
    needs: tuple[str, ...] = ()
    hidden: bool = False
    where: str = HOST
    produces: tuple[str, ...] = ()
    probes: ProbeFn | None = None
    refresh: Refresh | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (not self.phases):
            raise ValueError(f"phase {self.name}: give either run or child phases")
        if self.where not in WHERE:
            raise ValueError(f"phase {self.name}: where must be one of {', '.join(WHERE)}, not {self.where!r}")


@dataclass(frozen=True)
class Step:
    """A leaf phase selected to run, with its full path and what it inherits from its parents
    (``where``, ``needs``, ``produces``)."""

    path: str
    phase: Phase
    where: str = HOST
    needs: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()

    @property
    def top(self) -> str:
        return self.path.split("/", 1)[0]

    def probes(self, ctx) -> list[str]:
        return list(self.phase.probes(ctx)) if self.phase.probes is not None else []


@dataclass(frozen=True)
class Workflow:
    """An ordered table of phases (``init``, ``join``, ``join-control-plane``, ``reset``).

    :param given: what the command's inputs provide before any phase runs (a join's discovery
        gives ``api``: the cluster exists).
    :param config_skip: the config's ``skipPhases`` apply (kubeadm's init and join phases); the
        upgrade workflows have phases of their own.
    """

    name: str
    phases: tuple[Phase, ...]
    summary: str = ""
    given: tuple[str, ...] = ()
    config_skip: bool = True
    _index: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._check_needs()
        for path, phase, _ in self._walk():
            self._index[path] = path
            parent = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
            for alias in phase.aliases:
                self._index[parent + alias] = path
            if phase.phases:
                self._index[path + "/all"] = path
        # aliases of a parent apply to its children's paths too (addons/coredns)
        for path, phase, _ in list(self._walk()):
            if "/" in path:
                top, rest = path.split("/", 1)
                for alias in self._phase(top).aliases:
                    self._index[f"{alias}/{rest}"] = path
                    if phase.phases:
                        self._index[f"{alias}/{rest}/all"] = path
        for phase in self.phases:
            for alias in phase.aliases:
                if phase.phases:
                    self._index[f"{alias}/all"] = phase.name

    def _phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def _walk(self, phases: Iterable[Phase] | None = None, prefix: str = "", depth: int = 0
              ) -> Iterator[tuple[str, Phase, int]]:
        for phase in self.phases if phases is None else phases:
            path = prefix + phase.name
            yield path, phase, depth
            yield from self._walk(phase.phases, path + "/", depth + 1)

    def leaves(self) -> list[Step]:
        """Every leaf phase in order, with what it inherits from its parents."""
        out: list[Step] = []

        def walk(phases, prefix: str, where: str | None, needs: tuple, produces: tuple) -> None:
            for phase in phases:
                w = phase.where if phase.where != HOST or where is None else where
                n, p = needs + phase.needs, produces + phase.produces
                if phase.run is not None:
                    out.append(Step(prefix + phase.name, phase, w, tuple(dict.fromkeys(n)), tuple(dict.fromkeys(p))))
                walk(phase.phases, prefix + phase.name + "/", w, n, p)

        walk(self.phases, "", None, (), ())
        return out

    def _check_needs(self) -> None:
        """Every need is given or produced by an earlier phase (a table error otherwise)."""
        have = set(self.given)
        for step in self.leaves():
            missing = [n for n in step.needs if n not in have]
            if missing:
                raise ValueError(f"workflow {self.name}: phase {step.path} needs {', '.join(missing)}, "
                                 "which no earlier phase produces")
            have.update(step.produces)

    def relies_on(self, selected: list[Step]) -> dict[str, list[str]]:
        """For each selected phase, what it needs from phases that are not selected (so it
        relies on an earlier run): path -> ["pki (certs/ca, ...)", ...]."""
        chosen = {s.path for s in selected}
        producers: dict[str, list[str]] = {}
        out: dict[str, list[str]] = {}
        for step in self.leaves():
            if step.path in chosen:
                for need in step.needs:
                    if need in self.given:
                        continue
                    if not any(p in chosen for p in producers.get(need, [])):
                        names = producers.get(need, [])
                        out.setdefault(step.path, []).append(
                            f"{need} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
            for p in step.produces:
                producers.setdefault(p, []).append(step.path)
        return out

    def paths(self) -> list[str]:
        """Every phase path in execution order (parents before their children)."""
        return [path for path, _, _ in self._walk()]

    def canonical(self, name: str) -> str:
        """The path ``name`` stands for (aliases and ``/all`` resolved).

        :raises ConfigError: for a name that is not a phase of this workflow.
        """
        key = name.strip().strip("/").lower()
        if key in self._index:
            return self._index[key]
        raise ConfigError(
            f"invalid phase name {name!r} for {self.name}",
            fix="use one of: " + ", ".join(p for p in self.paths()),
        )

    def select(self, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Step]:
        """The leaf phases to run, in order, under kubeadm's rules.

        :param only: phase paths to run (with their children); empty = all.
        :param skip: phase paths to skip (with their children); wins over ``only``.
        :raises ConfigError: naming every unknown phase at once.
        """
        only_paths, skip_paths, bad = [], [], []
        for names, out in ((only, only_paths), (skip, skip_paths)):
            for name in names:
                if not name.strip():
                    continue
                try:
                    out.append(self.canonical(name))
                except ConfigError:
                    bad.append(name)
        if bad:
            raise ConfigError(
                f"invalid phase name{'s' if len(bad) > 1 else ''} for {self.name}: "
                + ", ".join(repr(b) for b in bad),
                fix="use one of: " + ", ".join(self.paths()),
            )

        def covered(path: str, selectors: list[str]) -> bool:
            return any(path == s or path.startswith(s + "/") for s in selectors)

        steps = []
        for step in self.leaves():
            if only_paths and not covered(step.path, only_paths):
                continue
            if covered(step.path, skip_paths):
                continue
            steps.append(step)
        return steps

    def help_text(self) -> str:
        """kubeadm's "This command executes the following phases:" block."""
        lines = [f"The {self.name} workflow executes the following phases:", "```"]
        width = max(len("  " * d + p.name) for _, p, d in self._walk() if not p.hidden) + 2
        for _, phase, depth in self._walk():
            if phase.hidden:
                continue
            label = "  " * depth + ("/" if depth else "") + phase.name
            lines.append(f"{label:<{width}} {phase.help}")
        lines.append("```")
        return "\n".join(lines)
