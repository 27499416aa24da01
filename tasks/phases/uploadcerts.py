"""``upload-certs`` (reference §8): ``kubeadm-certs`` encrypted with the certificate key, owned by
a 2-hour token Secret (only with ``--upload-certs``)."""

from __future__ import annotations

import hashlib

from ..core import bootstrap
from ..core import constants as K
from ..core.plan import ApiObject, Plan, SameKubeadmCerts
from . import rbac
from .workflow import API, Phase


def plan_upload_certs(ctx) -> Plan:
    """kubeadm-certs, encrypted with the certificate key, owned by a fresh 2-hour token.

    AES-GCM with a random nonce never gives the same bytes twice, so "unchanged" is decided
    by decrypting the live Secret with the key and comparing the files (and checking that its
    owner token still exists); only then is nothing uploaded.
    """
    plan = Plan("upload-certs", ctx.host_name)
    ns = K.KUBE_SYSTEM_NAMESPACE
    shared = ctx.cluster_pki.shared_files()
    external = ctx.cluster.etcd_external is not None
    owner = bootstrap.certificate_key_owner_token(now=ctx.now)
    owner_secret = bootstrap.token_secret_manifest(owner, now=ctx.now)
    owner_name = owner_secret["metadata"]["name"]
    certs = bootstrap.kubeadm_certs_secret(shared, ctx.certificate_key, owner_name=owner_name,
                                           owner_uid=f"$(uid:Secret/{ns}/{owner_name})", external_etcd=external)
    key = ctx.certificate_key
    wanted = tuple(sorted((rel, hashlib.sha256(data).hexdigest()) for rel, data in shared.items() if data))
    plan.add(ApiObject(certs, strategy="kubeadm-certs", secret=True, related=(owner_secret,),
                       compare=SameKubeadmCerts(key, wanted, external_etcd=external)))
    plan.add(ApiObject(rbac.role("kubeadm:kubeadm-certs", ns,
                                 [rbac.rule(["secrets"], ["get"], [K.KUBEADM_CERTS_SECRET])])))
    plan.add(ApiObject(rbac.role_binding("kubeadm:kubeadm-certs", ns, "kubeadm:kubeadm-certs",
                                         rbac.groups(K.DEFAULT_BOOTSTRAP_GROUP))))
    return plan


UPLOAD_CERTS = Phase(
    "upload-certs", "Upload certificates to kubeadm-certs", run=plan_upload_certs,
    run_if=lambda ctx: ctx.options.upload_certs, skip_reason="pass --upload-certs to share the CAs with joining control planes",
    where=API, needs=("api",), produces=("kubeadm-certs",),
)
