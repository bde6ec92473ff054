"""deploy/local-kube/build.sh refuses bad input in one line naming the step and the cause, exit status 2.

Each case runs the real script with an environment that cannot succeed (no Go on PATH, a module proxy that answers
nothing, a pinned version the proxy does not have), against a private module cache and assets directory, so
nothing leaves the machine and the developer's caches are untouched.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local-kube" / "build.sh"
GO = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)


def _run(tmp_path: Path, *, path: str, module_dir: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    script = SCRIPT if module_dir is None else module_dir / "build.sh"
    full_env = {
        "PATH": path,
        "HOME": str(tmp_path / "home"),
        "AIBENCH_KUBE_ASSETS": str(tmp_path / "assets"),
        "GOMODCACHE": str(tmp_path / "modcache"),
        "GOCACHE": str(tmp_path / "gocache"),
        "GOTOOLCHAIN": "local",
        **env,
    }
    return subprocess.run(["bash", str(script)], env=full_env, capture_output=True, text=True, timeout=120, check=False)


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_without_go_names_the_step(tmp_path: Path) -> None:
    result = _run(tmp_path, path="/usr/bin:/bin")
    assert result.returncode == 2
    assert _error_line(result).startswith("local-kube build: step 'go': no Go toolchain on PATH")


needs_go = pytest.mark.skipif(GO is None, reason="no Go toolchain on this machine (install Go 1.26 to test the build)")


@needs_go
def test_unreachable_module_proxy_names_the_download_step(tmp_path: Path) -> None:
    assert GO is not None
    # Port 9 (discard) on loopback: refused at once, nothing leaves the machine.
    result = _run(tmp_path, path=f"{Path(GO).parent}:/usr/bin:/bin", GOPROXY="http://127.0.0.1:9", GOSUMDB="off")
    assert result.returncode == 2
    line = _error_line(result)
    assert line.startswith("local-kube build: step 'module download': "), line
    assert "127.0.0.1:9" in line and "refused" in line


def _module_cache() -> Path | None:
    if GO is None:
        return None
    out = subprocess.run([GO, "env", "GOMODCACHE"], capture_output=True, text=True, check=False).stdout.strip()
    return Path(out) if out and (Path(out) / "k8s.io" / "kubernetes@v1.37.2").is_dir() else None


@pytest.mark.skipif(_module_cache() is None, reason="no warm Go module cache (run `bash deploy/local-kube/build.sh`)")
def test_a_wrong_pinned_version_is_named(tmp_path: Path) -> None:
    """The warm module cache holds every pinned module but not kwok v0.8.99; lookups are off, so only that fails."""
    assert GO is not None
    module_dir = tmp_path / "local-kube"
    shutil.copytree(SCRIPT.parent, module_dir)
    go_mod = module_dir / "go.mod"
    go_mod.write_text(go_mod.read_text().replace("sigs.k8s.io/kwok v0.8.0", "sigs.k8s.io/kwok v0.8.99"))
    result = _run(
        tmp_path,
        path=f"{Path(GO).parent}:/usr/bin:/bin",
        module_dir=module_dir,
        GOPROXY="off",
        GOMODCACHE=str(_module_cache()),
    )
    assert result.returncode == 2
    line = _error_line(result)
    assert line.startswith("local-kube build: step 'module download': go: sigs.k8s.io/kwok@v0.8.99: "), line
    assert line.endswith("module lookup disabled by GOPROXY=off")
