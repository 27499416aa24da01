"""``fab token.*``: bootstrap tokens of a running cluster (kubeadm token create/list/delete).

The API is reached with the first control plane's admin.conf from the state dir: directly, or
through an SSH tunnel via that host when its endpoint is not routable from here.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from . import output
from .core import bootstrap
from .core import constants as K
from .core.config.durations import parse_go_duration
from .core.errors import ConfigError, KubefabError
from .core.plan import ApiObject
from .core.secrets import Secret
from .core.spec import BootstrapToken


@contextmanager
def cluster_api(inv, state, *, accept_new_host_keys: bool = False):
    """(context, Api) for the cluster of the inventory, through its first control plane."""
    from .pipeline import ssh_connector
    from .session import cluster_api as session

    with session(inv, state, connect=ssh_connector(inv, accept_new_host_keys=accept_new_host_keys)) as pair:
        yield pair


def create(inv, state, *, ttl: str = "24h", description: str = "", print_join_command: bool = False,
           accept_new_host_keys: bool = False) -> None:
    try:
        duration = parse_go_duration(ttl)
    except (ValueError, ConfigError):
        duration = None
    if duration is None or duration < timedelta(0):
        raise ConfigError(f"--ttl {ttl[:40]!r} is not a duration of zero or more",
                          fix="use Go duration syntax, e.g. 24h, 90m, 0 (never)") from None
    token = BootstrapToken(token=bootstrap.generate_token(), description=description,
                           ttl=duration if duration > timedelta(0) else None)
    with cluster_api(inv, state, accept_new_host_keys=accept_new_host_keys) as (ctx, api):
        now = datetime.now(timezone.utc)
        api.apply(ApiObject(bootstrap.token_secret_manifest(token, now=now), strategy="retain", secret=True))
        if print_join_command:
            pin = bootstrap.ca_pin(ctx.cluster_pki.ca_cert_pem)
            endpoint = ctx.control_plane_url.removeprefix("https://")
            output.out(f"kubeadm join {endpoint} --token {token.token.reveal()} "
                       f"--discovery-token-ca-cert-hash {pin}", reveal=True)
        else:
            # like `kubeadm token create`: the token is the command's output
            output.out(token.token.reveal(), reveal=True)


def list_tokens(inv, state, *, show_secrets: bool = False, accept_new_host_keys: bool = False) -> None:
    with cluster_api(inv, state, accept_new_host_keys=accept_new_host_keys) as (_, api):
        items = api.request("GET", f"/api/v1/namespaces/{K.KUBE_SYSTEM_NAMESPACE}/secrets",
                            query={"fieldSelector": f"type={K.BOOTSTRAP_TOKEN_SECRET_TYPE}"})["items"]
    rows = [("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
    data = []
    now = datetime.now(timezone.utc)
    for item in sorted(items, key=lambda i: i["metadata"]["name"]):
        try:
            tok = bootstrap.token_from_secret(item)
        except KubefabError:
            continue  # kubeadm skips Secrets that are not valid tokens too
        text = tok.token.reveal() if show_secrets else f"{tok.token_id}.<redacted>"
        expires = "<forever>"
        ttl = "<forever>"
        if tok.expires is not None:
            expires = tok.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
            left = tok.expires - now
            ttl = "<invalid>" if left.total_seconds() < 0 else _short_duration(left)
        rows.append((text, ttl, expires, ",".join(tok.usages), tok.description or "<none>", ",".join(tok.groups)))
        # kubeadm's output.kubeadm.k8s.io BootstrapToken fields, camelCase
        data.append({"token": text, "tokenID": tok.token_id, "description": tok.description,
                     "expires": tok.expires.strftime("%Y-%m-%dT%H:%M:%SZ") if tok.expires else None,
                     "expired": bool(tok.expires is not None and tok.expires <= now),
                     "usages": list(tok.usages), "groups": list(tok.groups)})
    output.out(output.table(rows), reveal=show_secrets)
    output.emit("BootstrapTokenList", {"items": data}, reveal=show_secrets)


def delete(inv, state, token_ids: list[str], *, accept_new_host_keys: bool = False) -> None:
    from .api import ApiStatus

    if not token_ids:
        raise ConfigError("token.delete needs a token or token id", fix="e.g. fab token.delete --token abcdef")
    # checked before connecting: an id goes into the Secret's name and the request path
    bad = [i for i, raw in enumerate(token_ids)
           if not (bootstrap.TOKEN_RE.match(raw) if "." in raw else bootstrap.TOKEN_ID_RE.match(raw))]
    if bad:
        raise ConfigError(f"--token: {len(bad)} of {len(token_ids)} value(s) are neither a token nor a token id "
                          f"(values not shown: they may be credentials)",
                          fix="give <id> (6 lower-case letters or digits) or <id>.<secret>, as `fab token.list` shows")
    with cluster_api(inv, state, accept_new_host_keys=accept_new_host_keys) as (_, api):
        for raw in token_ids:
            token_id = raw.split(".", 1)[0]
            Secret(raw, kind="bootstrap token") if "." in raw else None  # registered for scrubbing
            name = K.BOOTSTRAP_TOKEN_SECRET_PREFIX + token_id
            try:
                api.request("DELETE", f"/api/v1/namespaces/{K.KUBE_SYSTEM_NAMESPACE}/secrets/{name}")
            except ApiStatus as exc:
                if exc.code == 404:
                    raise KubefabError(f"bootstrap token {token_id!r} not found",
                                       fix="list the tokens with `fab token.list`") from None
                raise KubefabError(f"deleting {name} failed: {exc.message} (HTTP {exc.code})") from None
            output.err(f"bootstrap token {token_id!r} deleted")


def _short_duration(left: timedelta) -> str:
    """``23h``, ``119m``, ``45s``: the largest unit that still reads precisely."""
    seconds = int(left.total_seconds())
    if seconds >= 10 * 3600:
        return f"{round(seconds / 3600)}h"
    if seconds >= 120:
        return f"{round(seconds / 60)}m"
    return f"{seconds}s"
