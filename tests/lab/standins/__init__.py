"""Stand-ins for Kubernetes binaries the lab machines cannot run.

Test infrastructure only, never part of the shipped tool: the kube-apiserver stand-in
(``apiserver``) and its pieces (``store``, ``apiserver_auth``, ``rbac``, ``patch``,
``apiserver_resources``, ``schema``) behave like the real server for what kubefab touches.
"""
