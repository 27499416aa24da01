"""Secret values that refuse to be printed.

A :class:`Secret` wraps a token, certificate key or private key. It is *not* a ``str``
subclass, so an f-string, ``%`` or ``+`` cannot leak it by accident: ``str()``, ``repr()`` and
``format()`` all give a placeholder. Only the code that must send the value to a host or to the
API server calls :meth:`Secret.reveal`. A process-wide registry of revealed values lets the
output layer scrub any that still slip into a message (ansible's ``no_log`` idea).
"""

from __future__ import annotations

import threading

_REGISTRY: set[str] = set()
_LOCK = threading.Lock()


class Secret:
    """A value that is redacted everywhere except through :meth:`reveal`.

    Example::

        token = Secret("abcdef.0123456789abcdef", kind="bootstrap token")
        f"{token}"       # '<redacted bootstrap token>'
        token.reveal()   # 'abcdef.0123456789abcdef'
    """

    __slots__ = ("_value", "kind")

    def __init__(self, value: str | bytes, kind: str = "secret") -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value
        self.kind = kind
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if len(text) >= 6:
            with _LOCK:
                _REGISTRY.add(text)

    def reveal(self):  # -> str | bytes
        """Return the raw value. Call only where it must leave the process."""
        return self._value

    def placeholder(self) -> str:
        return f"<redacted {self.kind}>"

    def __str__(self) -> str:
        return self.placeholder()

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return self.placeholder()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)


def scrub(text: str) -> str:
    """Replace every known secret value in ``text`` with a placeholder."""
    with _LOCK:
        known = sorted(_REGISTRY, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, "<redacted>")
    return scrub_pem(text)


def scrub_pem(text: str) -> str:
    """Redact PEM private-key blocks wherever they appear."""
    import re

    return re.sub(
        r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----",
        lambda m: f"<redacted {m.group(1).lower()}private key>",
        text,
        flags=re.S,
    )
