"""kubefab: kubeadm-style clusters over SSH with Fabric."""
