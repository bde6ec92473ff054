"""A Job's pod template is immutable, as kube-apiserver enforces it: re-applying a Job under the same name with
another template is refused (422 ``spec.template: ... field is immutable``) by PUT, merge patch and server-side
apply alike; an unchanged template and a changed mutable field (activeDeadlineSeconds, labels) are accepted.

Why this test: the serving suite's saturation sweep used to re-apply one ``inference-load`` Job per level with a
new template; the embedded target accepted that and a real control plane refused it."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _job(name: str, args: list[str]) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "suspend": False,
            "activeDeadlineSeconds": 60,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"aibench.io/no-such-node": "true"},  # never runs: only the API is tested
                    "containers": [{"name": "c", "image": "busybox", "command": ["sleep"], "args": args}],
                }
            },
        },
    }


def _refused(call) -> dict:
    with pytest.raises(ApiException) as info:
        call()
    assert info.value.status == 422, info.value.body
    return json.loads(info.value.body)


def test_changed_job_template_is_refused_with_kubes_wording(emulated_api: client.ApiClient, emulated_ns: str):
    batch = client.BatchV1Api(emulated_api)
    batch.create_namespaced_job(emulated_ns, _job("load", ["1"]))
    current = batch.read_namespaced_job("load", emulated_ns)

    # PUT with a new container argument: refused, naming the field as kube does
    changed = emulated_api.sanitize_for_serialization(current)
    changed["spec"]["template"]["spec"]["containers"][0]["args"] = ["2"]
    body = _refused(lambda: batch.replace_namespaced_job("load", emulated_ns, changed))
    assert body["reason"] == "Invalid"
    assert 'Job.batch "load" is invalid: spec.template: Invalid value' in body["message"]
    assert body["message"].endswith("field is immutable")
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.template"]

    # a merge patch of the template: refused too
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox", "args": ["3"]}]}}}}
    _refused(lambda: batch.patch_namespaced_job("load", emulated_ns, patch))

    # server-side apply of the whole Job with another template (what `kubectl apply --server-side` sends)
    applied = _job("load", ["4"])
    _refused(
        lambda: batch.patch_namespaced_job(
            "load", emulated_ns, applied, field_manager="test", force=True, _content_type="application/apply-patch+yaml"
        )
    )

    # mutable fields still change, and the template is what it was
    batch.patch_namespaced_job(
        "load", emulated_ns, {"spec": {"activeDeadlineSeconds": 90}, "metadata": {"labels": {"x": "y"}}}
    )
    after = batch.read_namespaced_job("load", emulated_ns)
    assert after.spec.active_deadline_seconds == 90 and after.metadata.labels["x"] == "y"
    assert after.spec.template.spec.containers[0].args == ["1"]
