"""kubeadm as the judge: kubefab's output compared with the real kubeadm's (issue 11)."""
