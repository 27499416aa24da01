"""Go's ``time.Duration`` text, as kubeadm's duration fields (``metav1.Duration``) read and write it.

Example::

    parse_go_duration("1h30m")                  # timedelta(hours=1, minutes=30)
    format_go_duration(timedelta(hours=8760))   # "8760h0m0s"
"""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction


# --- Go durations ------------------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9,
            "m": 60 * 10**9, "h": 3600 * 10**9}


# Go's time.Duration is an int64 of nanoseconds: ParseDuration refuses anything longer (~292 years)
MAX_DURATION_NS = (1 << 63) - 1


def parse_go_duration(text: str) -> timedelta:
    """Parse a Go ``time.Duration`` string (``"8760h"``, ``"4m0s"``, ``"1h30m"``, ``"1.5s"``).

    kubeadm's duration fields are ``metav1.Duration``, which only accept this form, and hold at
    most Go's ``int64`` nanoseconds (about 292 years), as here.

    :raises ValueError: when ``text`` is not a Go duration, or is out of that range.
    """
    raw = text.strip()
    sign = -1 if raw.startswith("-") else 1
    body = raw[1:] if raw[:1] in "+-" else raw
    if body == "0":
        return timedelta(0)
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    pos, total = 0, Fraction(0)
    for m in _DURATION_PART.finditer(body):
        if m.start() != pos:
            break
        whole, _, frac = m.group(1).partition(".")
        if len(whole.lstrip("0")) > 19:  # more than any int64 holds (Go: "invalid duration")
            raise ValueError(f"duration {text[:40]!r} is out of range")
        # Go ignores fraction digits past its precision; so do we (and never parse thousands)
        total += (Fraction(int(whole or "0")) + Fraction(f"0.{frac[:20] or '0'}")) * _UNIT_NS[m.group(2)]
        if total > MAX_DURATION_NS:
            raise ValueError(f"duration {text[:40]!r} is out of range")
        pos = m.end()
    if pos != len(body):
        raise ValueError(f"invalid duration {text!r}")
    return timedelta(microseconds=round(sign * total / 1000))


def format_go_duration(value: timedelta) -> str:
    """Format like Go's ``Duration.String()``: ``8760h0m0s``, ``4m0s``, ``30s``, ``1.5s``, ``500ms``.

    This is how kubeadm serializes durations in ``kubeadm-config`` (reference §5.2).
    """
    us = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    if us == 0:
        return "0s"
    sign, us = ("-", -us) if us < 0 else ("", us)
    if us < 1_000_000:
        if us < 1_000:
            return f"{sign}{us}µs"
        return f"{sign}{_frac(us, 1_000)}ms"
    hours, rest = divmod(us, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = _frac(rest, 1_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _frac(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
