"""Stand-ins for Kubernetes binaries the lab machines cannot run.

Test infrastructure only, never part of the shipped tool. The kube-apiserver stand-in is
``apiserver`` (``python -m tests.lab.standins.apiserver <kube-apiserver flags>``), built from:
``store`` (etcd v3 JSON gateway), ``apiserver_auth`` (certs, bootstrap and service-account
tokens), ``rbac`` (Node,RBAC and the default policy), ``apiserver_admission``
(NodeRestriction), ``apiserver_resources`` (kinds, defaults, validation),
``apiserver_registry`` (CRUD semantics), ``patch`` (merge/JSON/strategic patches), ``schema``
(OpenAPI definitions), ``apiserver_watch``, ``apiserver_tables`` and ``apiserver_openapi``.
"""
