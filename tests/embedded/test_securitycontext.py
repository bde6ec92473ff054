"""securityContext on the embedded target (harness/embedded/securitycontext.py and the launcher): honoured before
``execve`` or refused with CreateContainerConfigError and an event naming the field, never silently ignored."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.embedded import securitycontext
from harness.embedded.podenv import ConfigError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs the kubelet to run as root")


def pod_of(pod_sc: dict[str, Any] | None = None, sc: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "command": ["true"]}
    if sc is not None:
        container["securityContext"] = sc
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
        "spec": {"containers": [container], "securityContext": pod_sc or {}},
    }


def resolve(pod: dict[str, Any], *, root: bool = True, mount_namespace: bool = True) -> Any:
    return securitycontext.resolve(pod, pod["spec"]["containers"][0], mount_namespace=mount_namespace, root=root)


def test_container_fields_win_over_the_pod() -> None:
    pod = pod_of(
        {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 3000, "supplementalGroups": [4000]}, {"runAsUser": 2000}
    )
    got = resolve(pod)
    assert (got.uid, got.gid) == (2000, 1000)
    assert got.groups == (1000, 3000, 4000)


def test_uid_without_group_takes_the_image_primary_group() -> None:
    assert resolve(pod_of({"runAsUser": 65534})).gid == 65534  # nobody:nogroup in this host's /etc/passwd
    assert resolve(pod_of({"runAsUser": 4242424})).gid == 0  # no passwd entry: gid 0, as containerd does


@needs_root
def test_run_as_non_root_refusals_match_kube() -> None:
    with pytest.raises(
        ConfigError, match=r'container has runAsNonRoot and image will run as root \(pod: "p_ns\(u-1\)"'
    ):
        resolve(pod_of({"runAsNonRoot": True}))
    with pytest.raises(ConfigError, match="container's runAsUser breaks non-root policy"):
        resolve(pod_of({"runAsNonRoot": True}, {"runAsUser": 0}))
    assert resolve(pod_of({"runAsNonRoot": True, "runAsUser": 10})).uid == 10


@pytest.mark.parametrize(
    ("pod_sc", "sc", "field"),
    [
        ({}, {"seLinuxOptions": {"level": "s0"}}, "seLinuxOptions"),
        ({"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}, None, "sysctls"),
        ({}, {"procMount": "Unmasked"}, "procMount"),
        ({}, {"appArmorProfile": {"type": "RuntimeDefault"}}, "appArmorProfile"),
        ({"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}}, None, "seccompProfile Localhost"),
        ({"runAsUser": 1000}, {"capabilities": {"add": ["NET_ADMIN"]}}, "capabilities.add"),
        ({}, {"capabilities": {"drop": ["NOT_A_CAP"]}}, "unknown capability"),
    ],
)
def test_fields_that_cannot_be_honoured_are_refused_by_name(
    pod_sc: dict[str, Any], sc: dict[str, Any] | None, field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        resolve(pod_of(pod_sc, sc))


def test_refusals_where_the_host_lacks_root_or_a_mount_namespace() -> None:
    with pytest.raises(ConfigError, match="readOnlyRootFilesystem cannot be applied"):
        resolve(pod_of(None, {"readOnlyRootFilesystem": True}), mount_namespace=False)
    with pytest.raises(ConfigError, match="does not run as root"):
        resolve(pod_of({"runAsUser": os.geteuid() + 1}), root=False)


def test_capabilities_drop_all_minus_add_and_privileged() -> None:
    dropped = resolve(pod_of(None, {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}))
    assert securitycontext.CAPABILITIES["NET_BIND_SERVICE"] not in dropped.drop_capabilities
    assert securitycontext.CAPABILITIES["SYS_ADMIN"] in dropped.drop_capabilities
    assert resolve(pod_of(None, {"privileged": True, "capabilities": {"drop": ["ALL"]}})).drop_capabilities == ()
    plain = resolve(pod_of(None, {"allowPrivilegeEscalation": False}))
    assert plain.no_new_privs and plain.uid is None and not plain.seccomp_default


# ------------------------------------------------------------------------------------------------ on the target
def _wait_phase(core: client.CoreV1Api, ns: str, name: str, phases: tuple[str, ...]) -> client.V1Pod:
    deadline = time.monotonic() + 30
    while True:
        pod = core.read_namespaced_pod(name, ns)
        if pod.status.phase in phases:
            return pod
        assert time.monotonic() < deadline, f"pod {name} stayed {pod.status.phase}"
        time.sleep(0.1)


def _exec(api: client.ApiClient, ns: str, name: str, script: str) -> tuple[int, str, str]:
    from kubernetes.stream import stream

    core = client.CoreV1Api(api)
    ws = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        ns,
        command=["sh", "-c", script],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    ws.run_forever(timeout=30)
    return ws.returncode, ws.read_stdout(), ws.read_stderr()


@needs_root
def test_pod_asking_for_nobody_runs_as_nobody(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "nobody"},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65534,
                    "fsGroup": 2000,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox",
                        # python3 is the harness's interpreter (first on PATH in pods), which may live under a
                        # directory closed to other users (/root/.pyenv): the launcher must make it reachable
                        "command": [
                            "python3",
                            "-c",
                            "import os, ssl, time; open('/data/uid', 'w').write(f'{os.getuid()}\\n'); time.sleep(600)",
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True,
                        },
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        },
    )
    _wait_phase(core, ns, "nobody", ("Running",))
    code, out, _ = _exec(
        api,
        ns,
        "nobody",
        "for i in 1 2 3 4 5; do [ -s /data/uid ] && break; sleep 0.2; done; cat /data/uid; id -u; id -G",
    )
    assert code == 0
    main_uid, exec_uid, groups = out.split("\n")[:3]
    assert (main_uid, exec_uid) == ("65534", "65534")
    assert "2000" in groups.split()  # fsGroup joins the supplementary groups
    code, _, err = _exec(api, ns, "nobody", "cat /etc/shadow")
    assert code != 0 and "Permission denied" in err
    escape = Path("/tmp") / f"aibench-ro-{ns}"  # world-writable on the host: only the read-only remount stops it
    try:
        code, _, err = _exec(api, ns, "nobody", f"touch {escape}")
        assert code != 0 and "Read-only file system" in err  # readOnlyRootFilesystem; the volume stays writable
    finally:
        escape.unlink(missing_ok=True)
    code, out, _ = _exec(
        api,
        ns,
        "nobody",
        "touch /data/ok && stat -c %g /data && grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
    )
    assert code == 0
    lines = out.split("\n")
    assert lines[0] == "2000"  # the emptyDir belongs to the fsGroup
    status = dict(line.split(":\t") for line in lines[1:] if line)
    assert status == {"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}


@needs_root
def test_root_container_drops_only_what_it_asks(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "rooty"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox",
                        "command": ["sleep", "600"],
                        "securityContext": {"capabilities": {"drop": ["NET_RAW", "SYS_ADMIN"]}},
                    }
                ],
            },
        },
    )
    _wait_phase(core, ns, "rooty", ("Running",))
    code, out, _ = _exec(api, ns, "rooty", "id -u; grep -E '^(CapEff|CapBnd):' /proc/self/status")
    assert code == 0
    lines = out.split("\n")
    assert lines[0] == "0"
    for line in lines[1:3]:
        mask = int(line.split(":\t")[1], 16)
        assert not mask & (1 << securitycontext.CAPABILITIES["NET_RAW"])
        assert not mask & (1 << securitycontext.CAPABILITIES["SYS_ADMIN"])
        assert mask & (1 << securitycontext.CAPABILITIES["CHOWN"])


@needs_root
def test_refused_pod_waits_with_an_event_naming_why(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name, sc in (("rootish", {"runAsNonRoot": True}), ("selinux", {"seLinuxOptions": {"level": "s0:c1"}})):
        core.create_namespaced_pod(
            ns,
            {
                "metadata": {"name": name},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": sc,
                    "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "60"]}],
                },
            },
        )
    expected = {
        "rootish": "container has runAsNonRoot and image will run as root",
        "selinux": "spec.securityContext.seLinuxOptions is not supported",
    }
    deadline = time.monotonic() + 30
    for name, text in expected.items():
        while True:
            pod = core.read_namespaced_pod(name, ns)
            waiting = (pod.status.container_statuses or [None])[0]
            if (
                waiting is not None
                and waiting.state.waiting is not None
                and waiting.state.waiting.reason == "CreateContainerConfigError"
            ):
                assert text in waiting.state.waiting.message
                break
            assert time.monotonic() < deadline, f"{name} never reported CreateContainerConfigError"
            time.sleep(0.1)
        events = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
        assert any(e.reason == "Failed" and text in e.message for e in events)
        assert pod.status.phase == "Pending"
