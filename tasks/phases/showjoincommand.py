"""``show-join-command``: kubeadm init's closing words, how to use admin.conf and how to join."""

from __future__ import annotations

from ..core import bootstrap
from ..core import constants as K
from ..core.plan import Plan
from .workflow import OPERATOR, Phase


def plan_show_join_command(ctx) -> Plan:
    """kubeadm's closing words: where admin.conf is, then both forms of the join commands
    (they carry the token on purpose, as kubeadm prints them; --skip-token-print hides it)."""
    from ..core.plan import Message
    from ..core.secrets import Secret

    plan = Plan("show-join-command", ctx.host_name)
    plan.notes.append("print how to use admin.conf and the join commands")
    opts = ctx.options
    reveal = opts.show_secrets or not opts.skip_token_print
    token = ctx.bootstrap_tokens[0].token
    token_text = token.reveal() if reveal else str(token)
    pin = bootstrap.ca_pin(ctx.cluster_pki.ca_cert_pem)
    endpoint = ctx.control_plane_url.removeprefix("https://")
    lines = [
        "",
        "Your Kubernetes control-plane has initialized successfully!",
        "",
        "To start using your cluster from this machine:",
        f"  export KUBECONFIG={ctx.node_state_dir / K.ADMIN_KUBECONFIG}",
        "",
        f"On {ctx.host_name} itself, as kubeadm prints it:",
        "  mkdir -p $HOME/.kube && sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config",
        "",
    ]
    inv = opts.inventory_path
    if opts.upload_certs and "upload-certs" in ctx.selected:
        key = ctx.certificate_key
        if not opts.skip_certificate_key_print:
            plan.add(Message(Secret("[upload-certs] Using certificate key:\n" + key.reveal(), kind="certificate key"),
                             stream="out", reveal=True, description="the certificate key"))
        key_text = key.reveal() if not opts.skip_certificate_key_print else "<certificate key>"
        lines += [
            "You can now join any number of control-plane nodes:",
            f"  fab -H <host> join-control-plane --inventory {inv}",
            f"  kubeadm join {endpoint} --token {token_text} \\",
            f"      --discovery-token-ca-cert-hash {pin} \\",
            f"      --control-plane --certificate-key {key_text}",
            "",
        ]
    lines += [
        "Then you can join any number of worker nodes:",
        f"  fab -H <host> join --inventory {inv}",
        f"  kubeadm join {endpoint} --token {token_text} \\",
        f"      --discovery-token-ca-cert-hash {pin}",
    ]
    text = "\n".join(lines)
    # the text holds a secret only where its flag allows it (the others are placeholders already)
    shown = reveal or (opts.upload_certs and "upload-certs" in ctx.selected and not opts.skip_certificate_key_print)
    plan.add(Message(Secret(text, kind="join command") if shown else text, stream="out", reveal=shown,
                     description="how to use admin.conf and the join commands"))
    return plan


SHOW_JOIN_COMMAND = Phase("show-join-command", "Show the join command for control-plane and worker node",
                          run=plan_show_join_command, where=OPERATOR, needs=("bootstrap-token",))
