"""kubeadm's configuration API, split along kubeadm's own seams (import the module you need):

- :mod:`.load`: ``load_config_text`` / ``load_config_file`` / ``default_config`` (a kubeadm
  config file into :class:`~tasks.core.spec.KubeadmConfig`, every problem at once) and
  ``parse_cluster_configuration`` (the ``kubeadm-config`` ConfigMap);
- :mod:`.decode`: the API versions and kinds read, the YAML documents, the strict field reader;
- :mod:`.convert`: v1beta3 -> v1beta4;
- :mod:`.defaults`: each document read into the typed model with kubeadm's defaults;
- :mod:`.validate`: kubeadm's validation, and ``check_command_line`` for the same values as flags;
- :mod:`.encode`: the ClusterConfiguration as kubeadm uploads it;
- :mod:`.durations`: Go's ``time.Duration`` text.
"""
