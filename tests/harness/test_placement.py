"""Measuring workloads stay off emulated nodes, whatever affinity their manifests already carry."""

from __future__ import annotations

from harness.cluster.placement import keep_off_emulated_nodes

REAL = {"key": "aibench.io/emulated", "operator": "DoesNotExist"}


def test_every_pod_template_gets_the_term_and_existing_terms_keep_theirs() -> None:
    job = {"kind": "Job", "spec": {"template": {"spec": {"containers": []}}}}
    pod = {
        "kind": "Pod",
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
                        ]
                    }
                }
            }
        },
    }
    pvc = {"kind": "PersistentVolumeClaim", "spec": {}}
    keep_off_emulated_nodes([job, pod, pvc])
    job_terms = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert job_terms == [{"matchExpressions": [REAL]}]
    pod_terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert pod_terms[0]["matchExpressions"][-1] == REAL and pod_terms[0]["matchExpressions"][0]["key"] == "zone"
    assert pod_terms[1]["matchExpressions"] == [REAL] and pod_terms[1]["matchFields"]
    assert pvc == {"kind": "PersistentVolumeClaim", "spec": {}}
    keep_off_emulated_nodes([job])
    assert job_terms == [{"matchExpressions": [REAL]}], "idempotent"
