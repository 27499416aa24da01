"""kubefab: kubeadm-style clusters over SSH with Fabric."""

__version__ = "0.16.0"
