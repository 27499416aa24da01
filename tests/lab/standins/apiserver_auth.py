"""Authentication for the kube-apiserver stand-in (the real binary cannot run here).

As the real server: a client certificate verified against ``--client-ca-file`` gives user =
CN and groups = O; with ``--enable-bootstrap-token-auth`` a bearer ``<id>.<secret>`` is checked
against Secret ``kube-system/bootstrap-token-<id>`` (type bootstrap.kubernetes.io/token,
``usage-bootstrap-authentication: "true"``, not expired) and gives ``system:bootstrap:<id>``
with groups ``system:bootstrappers`` + ``auth-extra-groups``; a service-account JWT signed with
the ``--service-account-key-file`` key gives ``system:serviceaccount:<ns>:<name>``; no
credentials -> ``system:anonymous``/``system:unauthenticated``; authenticated users also get
``system:authenticated``. A presented but unrecognised token is a 401, never anonymous.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import re
from typing import Any, Callable

from .rbac import AUTHENTICATED, UNAUTHENTICATED, User

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"


class Unauthorized(Exception):
    """401: credentials were presented and rejected."""


def user_from_cert(cert: dict[str, Any] | None) -> User | None:
    """CN -> user, every O -> a group (``ssl.getpeercert()`` form)."""
    if not cert:
        return None
    cn, orgs = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    if not cn:
        raise Unauthorized("client certificate has no common name")
    return User(cn, tuple(orgs) + (AUTHENTICATED,))


def _b64(value: str) -> str:
    return base64.b64decode(value).decode()


def user_from_bootstrap_token(token: str, get_secret: Callable[[str, str], dict[str, Any] | None],
                              now: dt.datetime | None = None) -> User | None:
    """Check a bootstrap token; None when it is not shaped like one."""
    m = TOKEN_RE.match(token)
    if not m:
        return None
    token_id, token_secret = m.groups()
    secret = get_secret("kube-system", f"bootstrap-token-{token_id}")
    if not secret or secret.get("type") != SECRET_TYPE:
        raise Unauthorized("invalid bootstrap token")
    data = {k: _b64(v) for k, v in (secret.get("data") or {}).items()}
    if data.get("token-id") != token_id or not hmac.compare_digest(data.get("token-secret", ""), token_secret):
        raise Unauthorized("invalid bootstrap token")
    if data.get("usage-bootstrap-authentication") != "true":
        raise Unauthorized("bootstrap token not usable for authentication")
    exp = data.get("expiration")
    if exp:
        when = dt.datetime.fromisoformat(exp.replace("Z", "+00:00"))
        if when <= (now or dt.datetime.now(dt.timezone.utc)):
            raise Unauthorized("bootstrap token expired")
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        raise Unauthorized("bootstrap token being deleted")
    extra = [g.strip() for g in data.get("auth-extra-groups", "").split(",") if g.strip()]
    if any(not GROUP_RE.match(g) for g in extra):
        # Upstream's bootstrap authenticator refuses the whole token on a malformed group.
        raise Unauthorized("bootstrap token has an invalid auth-extra-groups entry")
    return User(f"system:bootstrap:{token_id}", ("system:bootstrappers", *extra, AUTHENTICATED))


def anonymous() -> User:
    return User("system:anonymous", (UNAUTHENTICATED,))


# ---------------------------------------------------------------------------- service accounts
def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_sa_token(key: Any, issuer: str, namespace: str, name: str, uid: str, ttl: int,
                  audiences: list[str], now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
    """A bound service-account JWT (RS256) as the TokenRequest API returns it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    now = now or dt.datetime.now(dt.timezone.utc)
    exp = now + dt.timedelta(seconds=ttl)
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    header = {"alg": alg, "kid": ""}
    claims = {
        "aud": audiences, "exp": int(exp.timestamp()), "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
        "iss": issuer, "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}".encode()
    if alg == "RS256":
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input.decode() + "." + _b64url(sig), exp


def user_from_sa_token(token: str, public_keys: list[Any], issuers: list[str],
                       sa_exists: Callable[[str, str, str], bool]) -> User | None:
    """Verify a service-account JWT; None when the token is not a JWT."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_unb64url(parts[0]))
        claims = json.loads(_unb64url(parts[1]))
        sig = _unb64url(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("malformed token")
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    ok = False
    for pub in public_keys:
        try:
            if isinstance(pub, rsa.RSAPublicKey) and header.get("alg") == "RS256":
                pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
                ok = True
            elif isinstance(pub, ec.EllipticCurvePublicKey) and header.get("alg") == "ES256" and len(sig) == 64:
                der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
                pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
                ok = True
        except InvalidSignature:
            continue
        if ok:
            break
    if not ok:
        raise Unauthorized("invalid bearer token")
    if claims.get("iss") not in issuers:
        raise Unauthorized("token issuer not accepted")
    if int(claims.get("exp", 0)) <= int(dt.datetime.now(dt.timezone.utc).timestamp()):
        raise Unauthorized("token expired")
    info = claims.get("kubernetes.io") or {}
    ns, sa = info.get("namespace", ""), (info.get("serviceaccount") or {})
    if not ns or not sa.get("name") or not sa_exists(ns, sa["name"], sa.get("uid", "")):
        raise Unauthorized("service account no longer exists")
    return User(f"system:serviceaccount:{ns}:{sa['name']}",
                ("system:serviceaccounts", f"system:serviceaccounts:{ns}", AUTHENTICATED), uid=sa.get("uid", ""))
