"""Whether a live API object already is as a plan wants it: the comparison behind "unchanged"
for :class:`~tasks.core.plan.ApiObject` steps (pure; :mod:`tasks.api` reads the live object).

Server-side defaults in the live object are not differences; a wanted zero value the server
omits (Go's ``omitempty``) is not either; ConfigMap and Secret data are compared whole.
"""

from __future__ import annotations

from typing import Any

from .plan import SameKubeadmCerts


def as_wanted_by(compare: Any, live: dict[str, Any]) -> bool:
    """Whether ``live`` is as wanted by a plan's comparison data (:class:`SameKubeadmCerts`)."""
    if isinstance(compare, SameKubeadmCerts):
        import hashlib

        from . import bootstrap

        try:
            files = bootstrap.decrypt_kubeadm_certs(live, compare.certificate_key,
                                                    external_etcd=compare.external_etcd)
        except Exception:
            return False
        got = tuple(sorted((rel, hashlib.sha256(data).hexdigest()) for rel, data in files.items() if data))
        return got == compare.files_sha256
    return False


def _is_zero(value: Any) -> bool:
    """A value the API server drops when it encodes the object (Go's ``omitempty``)."""
    return value is None or value is False or value == 0 or value in ("", [], {})


def contains(live: Any, wanted: Any, *, omitempty: bool = False) -> bool:
    """``wanted`` is already part of ``live`` (dicts: every wanted key, recursively; lists: the
    same length, item by item). Server-side defaults in ``live`` do not count as differences,
    and, with ``omitempty`` (an object's body, encoded from Go structs), neither does a wanted zero
    value the server omits (kube-proxy's ``readOnly: false``). Maps such as labels keep "" values."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(
            contains(live[k], v, omitempty=omitempty) if k in live else (omitempty and _is_zero(v))
            for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(
            contains(a, b, omitempty=omitempty) for a, b in zip(live, wanted))
    return live == wanted


def _body_without_meta(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}


# Maps that are wholly the writer's: a key gone from the wanted object must go from the live one.
_EXACT_MAPS = ("data", "binaryData")


def is_as_wanted(live: dict[str, Any], wanted: dict[str, Any]) -> bool:
    meta_w, meta_l = wanted.get("metadata", {}), live.get("metadata", {})
    for key in ("labels", "annotations", "ownerReferences"):
        if key in meta_w and not contains(meta_l.get(key) or ({} if key != "ownerReferences" else []), meta_w[key]):
            return False
    if wanted.get("kind") in ("ConfigMap", "Secret"):
        if any((live.get(k) or {}) != (wanted.get(k) or {}) for k in _EXACT_MAPS if k in wanted):
            return False
    return contains(_body_without_meta(live), _body_without_meta(wanted), omitempty=True)
