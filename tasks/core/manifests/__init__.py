"""Every node file and addon object that kubeadm init/join writes, rendered from ``templates/``,
one module per kubeadm phase that writes them (kubeadm-reference.md §3, §4, §5.4-§5.6):

- :mod:`.staticpods`: the static Pod manifests (``control-plane``, ``etcd local``);
- :mod:`.kubelet`: config.yaml, instance-config.yaml, kubeadm-flags.env, the systemd drop-in;
- :mod:`.addons`: the CoreDNS and kube-proxy objects;
- :mod:`.common`: what they share (flag merge, service IPs, images, the component-config hash).

Pure functions: the same inputs always give the same bytes.
"""
