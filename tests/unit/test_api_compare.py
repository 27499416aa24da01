"""How kubefab decides that a live object is already as wanted (tasks/api.py)."""

from tasks.core.compare import contains, is_as_wanted


def test_server_defaults_are_not_differences() -> None:
    live = {"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [{"port": 53, "protocol": "UDP"}]}}
    assert contains(live, {"spec": {"ports": [{"port": 53}]}})


def test_a_zero_value_the_server_omits_is_not_a_difference() -> None:
    # Found on the real kube-apiserver: kubeadm's kube-proxy DaemonSet says `readOnly: false`,
    # the server stores nothing for it, and every re-run "updated" the DaemonSet.
    live = {"kind": "DaemonSet", "metadata": {"name": "kube-proxy"},
            "spec": {"template": {"spec": {"containers": [{"volumeMounts": [{"name": "x", "mountPath": "/run"}]}]}}}}
    wanted = {"kind": "DaemonSet", "metadata": {"name": "kube-proxy"},
              "spec": {"template": {"spec": {"containers": [
                  {"volumeMounts": [{"name": "x", "mountPath": "/run", "readOnly": False}]}]}}}}
    assert is_as_wanted(live, wanted)
    assert contains(live["spec"], wanted["spec"], omitempty=True)


def test_a_real_difference_is_still_one() -> None:
    live = {"spec": {"volumeMounts": [{"name": "x", "readOnly": False}]}}
    assert not contains(live, {"spec": {"volumeMounts": [{"name": "x", "readOnly": True}]}})
    assert not contains({"spec": {}}, {"spec": {"replicas": 2}})
    assert not contains({"spec": {"replicas": 0}}, {"spec": {"replicas": 2}})


def test_an_empty_label_value_is_a_value() -> None:
    # mark-control-plane's labels are "": a Node without them is not as wanted.
    live = {"kind": "Node", "metadata": {"name": "n", "labels": {"kubernetes.io/os": "linux"}}}
    wanted = {"kind": "Node", "metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}}}
    assert not is_as_wanted(live, wanted)
    assert not contains({}, {"node-role.kubernetes.io/control-plane": ""})
