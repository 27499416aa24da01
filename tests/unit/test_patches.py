"""kubeadm's patch files (``--patches DIR``): names, order, documents and the three patch types.

The strategic-merge cases follow apimachinery's rules for a v1.Pod (checked against the real
kubeadm in tests/judge with the ``patches`` configuration).
"""

from __future__ import annotations

import os

import pytest

from tasks.core import patches as P
from tasks.core.patches import PatchError

SMP = P.PATCH_TYPES["strategic"]


@pytest.mark.parametrize("name,want", [
    ("etcd.yaml", ("etcd", SMP)),
    ("etcd.json", ("etcd", SMP)),
    ("kube-apiserver0+merge.yaml", ("kube-apiserver", P.PATCH_TYPES["merge"])),
    ("kube-scheduler-extra+json.json", ("kube-scheduler", P.PATCH_TYPES["json"])),
    ("kubeletconfiguration+strategic.yaml", ("kubeletconfiguration", SMP)),
    ("corednsdeployment.yaml", ("corednsdeployment", SMP)),
    ("etcdjson.yaml", ("etcd", SMP)),  # "json" without '+' is a suffix
    ("etcd.yml", "the file extension must be one of [json yaml]"),
    ("etcd.yaml.bak", "the file extension must be one of [json yaml]"),
    ("kube-proxy.yaml", "unknown target, must be one of [etcd kube-apiserver kube-controller-manager "
                        "kube-scheduler kubeletconfiguration corednsdeployment]"),
    ("Etcd.yaml", "unknown target, must be one of [etcd kube-apiserver kube-controller-manager "
                  "kube-scheduler kubeletconfiguration corednsdeployment]"),
])
def test_file_names(name, want):
    assert P.parse_filename(name) == want


@pytest.mark.parametrize("name", ["etcd+.yaml", "etcd+yaml.yaml", "kube-apiserver+JSON.json"])
def test_a_plus_without_a_patch_type_is_an_error(name):
    with pytest.raises(PatchError, match="unknown or missing patch type after"):
        P.parse_filename(name)


def test_documents_are_split_on_separator_lines():
    text = "a: 1\n---\n---  # comment\nb: 2\n--- \n\n"
    assert P.split_documents(text, source="f") == ["a: 1", "b: 2"]
    with pytest.raises(PatchError, match="invalid Yaml document separator"):
        P.split_documents("a: 1\n--- b: 2\n", source="f")


def _write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_walk_order_subdirectories_and_ignored_files(tmp_path):
    _write(tmp_path, {"etcd1.yaml": "a: 1\n", "etcd0+merge.yaml": "a: 0\n---\nb: 0\n", "z/etcd.yaml": "c: 1\n",
                      "a/kube-scheduler.json": "{}", "notes.txt": "x", "etcd2.yaml": "", "kube-proxy.yaml": "a: 1"})
    d = P.load_patch_dir(tmp_path)
    assert [s.file for s in d.sets] == ["a/kube-scheduler.json", "etcd0+merge.yaml", "etcd1.yaml", "z/etcd.yaml"]
    assert d.sets[1].patches == ({"a": 0}, {"b": 0})
    assert d.files == ("kube-scheduler.json", "etcd0+merge.yaml", "etcd1.yaml", "etcd.yaml")
    assert d.ignored == ("etcd2.yaml", "kube-proxy.yaml", "notes.txt")
    assert d.messages[0] == f'[patches] Reading patches from path "{tmp_path}"'
    doc, notes = d.apply("etcd", {"x": 1})
    assert doc == {"x": 1, "a": 1, "b": 0, "c": 1}
    assert notes == ['[patches] Applied patch of type "application/merge-patch+json" to target "etcd"'] * 2 + \
        ['[patches] Applied patch of type "application/strategic-merge-patch+json" to target "etcd"'] * 2


@pytest.mark.parametrize("files,message", [
    ({"etcd+yml.yaml": "a: 1"}, "unknown or missing patch type"),
    ({"etcd.yaml": "a: [1\n"}, "could not convert a patch"),
    ({"etcd.yaml": "a: 1\n--- x\n"}, "invalid Yaml document separator"),
])
def test_bad_files_are_errors(tmp_path, files, message):
    _write(tmp_path, files)
    with pytest.raises(PatchError, match=message) as info:
        P.load_patch_dir(tmp_path)
    assert info.value.fix


def test_the_directory_must_be_a_directory_not_a_link(tmp_path):
    with pytest.raises(PatchError, match="could not list patch files"):
        P.load_patch_dir(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(PatchError, match="not a directory"):
        P.load_patch_dir(tmp_path / "file")
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(PatchError, match="not a directory"):  # kubeadm checks it with lstat
        P.load_patch_dir(tmp_path / "link")


def _pod(**container):
    return {"metadata": {"name": "p", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i", "command": ["x", "--a"],
                                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                     "volumeMounts": [{"name": "v1", "mountPath": "/v1"}], **container}],
                     "volumes": [{"name": "v1", "hostPath": {"path": "/v1"}}]}}


def smp(doc, patch):
    return P.apply_strategic_merge_patch(doc, patch, P.POD)


def test_strategic_merge_by_merge_keys_and_apimachinery_order():
    out = smp(_pod(), {"spec": {"containers": [{"name": "c", "env": [{"name": "C", "value": "3"},
                                                                      {"name": "A", "value": "9"}],
                                                "volumeMounts": [{"name": "v2", "mountPath": "/v2"}]}],
                                "volumes": [{"name": "v2", "hostPath": {"path": "/v2"}}]}})
    c = out["spec"]["containers"][0]
    # items of the patch in its order, before the server-only ones when new
    assert c["env"] == [{"name": "C", "value": "3"}, {"name": "A", "value": "9"}, {"name": "B", "value": "2"}]
    assert [m["mountPath"] for m in c["volumeMounts"]] == ["/v2", "/v1"]
    assert [v["name"] for v in out["spec"]["volumes"]] == ["v2", "v1"]
    assert c["command"] == ["x", "--a"] and c["image"] == "i"


def test_lists_without_a_merge_key_are_replaced_and_null_deletes():
    out = smp(_pod(), {"metadata": {"labels": None}, "spec": {"containers": [{"name": "c", "command": ["y"]}]}})
    assert "labels" not in out["metadata"]
    assert out["spec"]["containers"][0]["command"] == ["y"]


def test_patch_directives():
    out = smp(_pod(), {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "$patch": "delete"}]}]}})
    assert out["spec"]["containers"][0]["env"] == [{"name": "B", "value": "2"}]
    out = smp(_pod(), {"spec": {"volumes": [{"name": "only", "emptyDir": {}}, {"$patch": "replace"}]}})
    assert out["spec"]["volumes"] == [{"name": "only", "emptyDir": {}}]
    out = smp(_pod(), {"metadata": {"labels": {"$patch": "replace", "b": "2"}}})
    assert out["metadata"]["labels"] == {"b": "2"}
    out = smp(_pod(), {"metadata": {"$patch": "delete"}})
    assert out["metadata"] == {}
    out = smp(_pod(), {"spec": {"volumes": [{"name": "v1", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}]}})
    assert out["spec"]["volumes"] == [{"name": "v1", "emptyDir": {}}]
    out = smp({"metadata": {"finalizers": ["a", "b"]}}, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["b"]
    out = smp(_pod(), {"spec": {"containers": [{"name": "c", "$setElementOrder/env": [
        {"name": "B"}, {"name": "N"}, {"name": "A"}], "env": [{"name": "N", "value": "0"}]}]}})
    assert [e["name"] for e in out["spec"]["containers"][0]["env"]] == ["B", "N", "A"]
    with pytest.raises(PatchError, match="does not match"):
        smp(_pod(), {"spec": {"containers": [{"name": "c", "$setElementOrder/env": [{"name": "A"}],
                                              "env": [{"name": "N", "value": "0"}]}]}})
    with pytest.raises(PatchError, match="merge key"):
        smp(_pod(), {"spec": {"containers": [{"image": "x"}]}})


def test_json_patch_and_merge_patch():
    doc = {"a": [1, 2], "b": {"c": 1}}
    assert P.apply_json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3},
                                    {"op": "replace", "path": "/b/c", "value": 2},
                                    {"op": "copy", "from": "/b", "path": "/d"},
                                    {"op": "move", "from": "/a/0", "path": "/e"},
                                    {"op": "test", "path": "/e", "value": 1},
                                    {"op": "remove", "path": "/b"}]) == {"a": [2, 3], "d": {"c": 2}, "e": 1}
    for bad in ([{"op": "replace", "path": "/x", "value": 1}], [{"op": "remove", "path": "/a/5"}],
                [{"op": "test", "path": "/a/0", "value": 9}], [{"op": "frob", "path": "/a"}], {"op": "add"}):
        with pytest.raises(PatchError):
            P.apply_json_patch({"a": [1]}, bad)
    assert P.apply_merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == \
        {"a": {"c": 2, "d": 3}, "l": [2]}
    with pytest.raises(PatchError):
        P.apply_merge_patch({}, None)


def test_a_patch_that_does_not_apply_names_the_file(tmp_path):
    _write(tmp_path, {"etcd+json.yaml": "- op: remove\n  path: /nope\n"})
    d = P.load_patch_dir(tmp_path)
    with pytest.raises(PatchError, match=r"etcd\+json.yaml to target \"etcd\"") as info:
        d.apply("etcd", {"a": 1})
    assert "key 'nope' does not exist" in info.value.problem


# --- through `fab` -------------------------------------------------------------------------------
def test_init_offline_applies_patches_and_reports_them(tmp_path):
    from tests.unit.test_cli import fab

    _write(tmp_path / "p", {"kube-apiserver.yaml": "spec:\n  containers:\n  - name: kube-apiserver\n"
                                                   "    resources:\n      requests:\n        cpu: 900m\n",
                            "kubeletconfiguration+merge.yaml": "maxPods: 42\n", "notes.txt": "x"})
    out = tmp_path / "out"
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--patches", str(tmp_path / "p"),
            "--state-dir", str(tmp_path / "state"), "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert '[patches] Ignoring file "notes.txt"' in r.stderr
    assert 'Applied patch of type "application/strategic-merge-patch+json" to target "kube-apiserver"' in r.stdout
    api = (out / "master1" / "etc" / "kubernetes" / "manifests" / "kube-apiserver.yaml").read_text()
    assert "cpu: 900m" in api and api.endswith("status: {}\n")
    assert "maxPods: 42" in (out / "master1" / "var" / "lib" / "kubelet" / "config.yaml").read_text()
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("files,message", [
    ({"etcd+yml.yaml": "a: 1"}, "unknown or missing patch type"),
    ({"etcd.yaml": "a: [1\n"}, "could not convert a patch"),
    ({"etcd+json.yaml": "- op: remove\n  path: /nope\n"}, "could not apply the patch"),
])
def test_init_with_bad_patches_fails_cleanly_and_writes_nothing(tmp_path, files, message):
    from tests.unit.test_cli import fab

    _write(tmp_path / "p", files)
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--patches", str(tmp_path / "p"),
            "--state-dir", str(tmp_path / "state"), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 1, r.stdout
    assert message in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "state").exists() and not (tmp_path / "out").exists()


def test_missing_patch_dir_is_refused(tmp_path):
    from tests.unit.test_cli import fab

    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--patches", str(tmp_path / "nope"),
            "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 1 and "could not list patch files" in r.stderr and "Traceback" not in r.stderr


def test_a_patched_static_pod_is_written_as_kubeadm_rereads_it(tmp_path):
    """v1.Pod drops false plain booleans (readOnly...) and always has status; 1.33 keeps a null
    creationTimestamp."""
    import yaml

    from tasks.core.manifests.staticpods import patch_static_pod, render_static_pods
    from tasks.core.spec import ClusterConfiguration

    _write(tmp_path, {"kube-scheduler.yaml": "status: null\nspec:\n  hostNetwork: false\n  containers:\n"
                                             "  - name: kube-scheduler\n    tty: false\n    volumeMounts:\n"
                                             "    - mountPath: /etc/kubernetes/scheduler.conf\n      readOnly: false\n"})
    pods = render_static_pods(ClusterConfiguration(kubernetes_version="v1.33.0"), node_name="m1",
                                        advertise_address="10.0.0.1")
    data, notes = patch_static_pod(pods["kube-scheduler"], "kube-scheduler", P.load_patch_dir(tmp_path))
    doc = yaml.safe_load(data)
    assert notes and doc["status"] == {} and doc["metadata"]["creationTimestamp"] is None
    assert "hostNetwork" not in doc["spec"] and "tty" not in doc["spec"]["containers"][0]
    assert doc["spec"]["containers"][0]["volumeMounts"] == [{"mountPath": "/etc/kubernetes/scheduler.conf",
                                                             "name": "kubeconfig"}]
    untouched, none = patch_static_pod(pods["etcd"], "etcd", P.load_patch_dir(tmp_path))
    assert untouched == pods["etcd"] and none == []
