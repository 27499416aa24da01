"""One family of errors, rendered as ``[phase] host: problem`` plus a ``fix:`` line."""

from __future__ import annotations


class KubefabError(Exception):
    """An error an operator can act on.

    :param problem: what is wrong, in one sentence.
    :param host: the inventory name of the host concerned, if any.
    :param phase: the kubeadm phase path (``certs/apiserver``), if any.
    :param fix: what to do about it.
    :param details: further lines (each failing field, each failed check).
    """

    def __init__(
        self,
        problem: str,
        *,
        host: str | None = None,
        phase: str | None = None,
        fix: str | None = None,
        details: list[str] | tuple[str, ...] = (),
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.host = host
        self.phase = phase
        self.fix = fix
        self.details = tuple(details)

    def with_context(self, *, host: str | None = None, phase: str | None = None) -> "KubefabError":
        """Fill in host/phase when the raiser did not know them."""
        if host and not self.host:
            self.host = host
        if phase and not self.phase:
            self.phase = phase
        return self

    def render(self) -> str:
        from .secrets import scrub

        prefix = ""
        if self.phase:
            prefix += f"[{self.phase}] "
        if self.host:
            prefix += f"{self.host}: "
        lines = [prefix + self.problem]
        lines += [f"  - {d}" for d in self.details]
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return scrub("\n".join(lines))

    def __str__(self) -> str:
        return self.render()


class ConfigError(KubefabError):
    """Bad inventory or kubeadm configuration (all problems listed at once)."""


class PKIError(KubefabError):
    """A certificate or key that cannot be used or reused."""


class PreflightError(KubefabError):
    """One or more preflight checks failed."""


class RemoteError(KubefabError):
    """A host could not be reached, or a command on it failed."""


class ApiError(KubefabError):
    """The Kubernetes API refused or never answered."""
