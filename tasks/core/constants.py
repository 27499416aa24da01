"""kubeadm's paths, file names, identities, ports and timeouts, named after kubeadm's constants.

Every other module takes these from here; no literal ``/etc/kubernetes`` lives anywhere else.
"""

from __future__ import annotations

from datetime import timedelta

# --- directories and files on a node -------------------------------------------------------
KUBERNETES_DIR = "/etc/kubernetes"
MANIFESTS_DIR = "/etc/kubernetes/manifests"
DEFAULT_CERTIFICATES_DIR = "/etc/kubernetes/pki"
KUBELET_RUN_DIR = "/var/lib/kubelet"
KUBELET_PKI_DIR = "/var/lib/kubelet/pki"
KUBELET_CONFIG_FILE = "/var/lib/kubelet/config.yaml"
KUBELET_FLAGS_ENV_FILE = "/var/lib/kubelet/kubeadm-flags.env"
KUBELET_INSTANCE_CONFIG_FILE = "/var/lib/kubelet/instance-config.yaml"
KUBELET_CLIENT_CURRENT_PEM = "/var/lib/kubelet/pki/kubelet-client-current.pem"
KUBELET_SYSTEMD_DROPIN_DIR = "/etc/systemd/system/kubelet.service.d"
KUBELET_SYSTEMD_DROPIN_FILE = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
KUBELET_DEFAULTS_FILE = "/etc/default/kubelet"
DEFAULT_ETCD_DATA_DIR = "/var/lib/etcd"

ADMIN_KUBECONFIG = "admin.conf"
SUPER_ADMIN_KUBECONFIG = "super-admin.conf"
KUBELET_KUBECONFIG = "kubelet.conf"
BOOTSTRAP_KUBELET_KUBECONFIG = "bootstrap-kubelet.conf"
CONTROLLER_MANAGER_KUBECONFIG = "controller-manager.conf"
SCHEDULER_KUBECONFIG = "scheduler.conf"

# --- static pods ---------------------------------------------------------------------------
KUBE_APISERVER = "kube-apiserver"
KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
KUBE_SCHEDULER = "kube-scheduler"
ETCD = "etcd"
KUBE_PROXY = "kube-proxy"
CONTROL_PLANE_COMPONENTS = (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER)
STATIC_POD_COMPONENTS = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER)
KUBE_SYSTEM_NAMESPACE = "kube-system"
KUBE_PUBLIC_NAMESPACE = "kube-public"
APISERVER_ADVERTISE_ANNOTATION = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
ETCD_ADVERTISE_CLIENT_URLS_ANNOTATION = "kubeadm.kubernetes.io/etcd.advertise-client-urls"
COMPONENT_CONFIG_HASH_ANNOTATION = "kubeadm.kubernetes.io/component-config.hash"
CRI_SOCKET_ANNOTATION = "kubeadm.alpha.kubernetes.io/cri-socket"

# --- ports ---------------------------------------------------------------------------------
DEFAULT_API_BIND_PORT = 6443
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ETCD_METRICS_PORT = 2381
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_CONTROLLER_MANAGER_PORT = 10257
KUBE_SCHEDULER_PORT = 10259

# --- PKI base names (relative to certificatesDir) -----------------------------------------
CA_CERT_AND_KEY_BASENAME = "ca"
APISERVER_CERT_AND_KEY_BASENAME = "apiserver"
APISERVER_KUBELET_CLIENT_CERT_AND_KEY_BASENAME = "apiserver-kubelet-client"
APISERVER_KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"
KUBELET_API_ADMIN_BINDING = "kubeadm:apiserver-kubelet-client"  # 1.36+
KUBELET_API_ADMIN_ROLE = "system:kubelet-api-admin"
FRONT_PROXY_CA_CERT_AND_KEY_BASENAME = "front-proxy-ca"
FRONT_PROXY_CLIENT_CERT_AND_KEY_BASENAME = "front-proxy-client"
ETCD_CA_CERT_AND_KEY_BASENAME = "etcd/ca"
ETCD_SERVER_CERT_AND_KEY_BASENAME = "etcd/server"
ETCD_PEER_CERT_AND_KEY_BASENAME = "etcd/peer"
ETCD_HEALTHCHECK_CLIENT_CERT_AND_KEY_BASENAME = "etcd/healthcheck-client"
APISERVER_ETCD_CLIENT_CERT_AND_KEY_BASENAME = "apiserver-etcd-client"
SERVICE_ACCOUNT_KEY_BASENAME = "sa"

CERTIFICATE_BACKDATE = timedelta(minutes=5)
DEFAULT_CERT_VALIDITY = timedelta(hours=8760)
DEFAULT_CA_CERT_VALIDITY = timedelta(hours=87600)

# --- identities ----------------------------------------------------------------------------
CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"
SYSTEM_MASTERS_GROUP = "system:masters"
NODES_GROUP = "system:nodes"
NODES_USER_PREFIX = "system:node:"
BOOTSTRAP_USER_PREFIX = "system:bootstrap:"
BOOTSTRAPPERS_GROUP = "system:bootstrappers"
DEFAULT_BOOTSTRAP_GROUP = "system:bootstrappers:kubeadm:default-node-token"
ADMIN_USER = "kubernetes-admin"
SUPER_ADMIN_USER = "kubernetes-super-admin"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"
TLS_BOOTSTRAP_USER = "tls-bootstrap-token-user"

# --- cluster objects -----------------------------------------------------------------------
KUBEADM_CONFIG_CONFIGMAP = "kubeadm-config"
CLUSTER_CONFIGURATION_KEY = "ClusterConfiguration"
KUBELET_CONFIG_CONFIGMAP = "kubelet-config"
KUBELET_CONFIG_KEY = "kubelet"
KUBE_PROXY_CONFIGMAP = "kube-proxy"
CLUSTER_INFO_CONFIGMAP = "cluster-info"
KUBEADM_CERTS_SECRET = "kubeadm-certs"
BOOTSTRAP_TOKEN_SECRET_PREFIX = "bootstrap-token-"
BOOTSTRAP_TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token"
JWS_KUBECONFIG_PREFIX = "jws-kubeconfig-"
CERTIFICATE_KEY_TOKEN_TTL = timedelta(hours=2)
DEFAULT_TOKEN_TTL = timedelta(hours=24)
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
CONTROL_PLANE_TAINT_KEY = "node-role.kubernetes.io/control-plane"

# --- defaults ------------------------------------------------------------------------------
DEFAULT_IMAGE_REPOSITORY = "registry.k8s.io"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/12"
DEFAULT_DNS_DOMAIN = "cluster.local"
DEFAULT_CLUSTER_NAME = "kubernetes"
DEFAULT_CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
DEFAULT_ENCRYPTION_ALGORITHM = "RSA-2048"
ENCRYPTION_ALGORITHMS = ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384")
