"""nvidia-smi --query-gpu CSV and -L lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.nvidia_smi import parse_gpu_list, parse_query_csv, query_measurements

DATA = Path(__file__).resolve().parent.parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_list_four_p100():
    text = read("nvidia-smi_L_4xP100_pkb.txt")
    assert text.endswith(")\n") and len(text.splitlines()) == 4
    gpus = parse_gpu_list(text)
    assert [g.index for g in gpus] == [0, 1, 2, 3]
    assert {g.name for g in gpus} == {"Tesla P100-PCIE-16GB"}
    assert [g.uuid for g in gpus] == [
        "GPU-9c15c693-71ea-a2f0-e0c9-4e85e7bbc039",
        "GPU-10c6b41b-e02b-8724-b8ff-4d786579b7fa",
        "GPU-6cc5c0f9-be62-880b-de65-e7bf2b742032",
        "GPU-69c075e7-cc59-93a1-4eb5-3a35cdaa27ad",
    ]


def test_list_heterogeneous():
    gpus = parse_gpu_list(read("nvidia-smi_L_heterogeneous_K80-P100_pkb.txt"))
    assert [(g.index, g.name) for g in gpus] == [(0, "Tesla K80"), (1, "Tesla P100-PCIE-16GB")]
    assert gpus[0].uuid == "GPU-5c6dd8d9-b3bd-4e11-5d86-e33307f46ea5"


def test_list_with_mig_lines():
    # the layout of `nvidia-smi -L` on a MIG-enabled A100 (driver >= 470)
    text = (
        "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)\n"
        "  MIG 1g.5gb      Device  0: (UUID: MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f)\n"
        "  MIG 1g.5gb      Device  1: (UUID: MIG-cba663e8-9bed-5b25-b243-5985ef7c9beb)\n"
        "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-2a9d5b1f-0000-0000-0000-000000000001)\n"
    )
    gpus = parse_gpu_list(text)
    assert [len(g.mig_devices) for g in gpus] == [2, 0]
    assert gpus[0].mig_devices[1].profile == "1g.5gb" and gpus[0].mig_devices[1].device == 1


def test_query_power_trace():
    rows = parse_query_csv(read("nvidia-smi_query-gpu_index-power.draw-timestamp_csv_pkb.csv"))
    assert len(rows) == 91
    assert rows[0].units == {"power.draw": "W"}
    assert (rows[0].get("index"), rows[0].get("power.draw")) == (0.0, 16.48)
    assert rows[-1].get("power.draw") == 70.01
    assert {r.get("timestamp") for r in rows} == {"2022/09/28 15:36:51.68"}
    ms = query_measurements(rows)
    assert len(ms) == 91 and (ms[0].metric, ms[0].unit, dict(ms[0].labels)) == ("power", "W", {"gpu": "0"})


def test_query_not_supported_noheader_nounits():
    text = (
        "index, name, uuid, power.draw [W], memory.used [MiB], temperature.gpu, utilization.gpu [%]\n"
        "0, Tesla K80, GPU-5c6dd8d9-b3bd-4e11-5d86-e33307f46ea5, [Not Supported], 15 MiB, 33, 0 %\n"
        "1, Tesla K80, GPU-10c6b41b-e02b-8724-b8ff-4d786579b7fa, N/A, [N/A], 46, 100 %\n"
    )
    rows = parse_query_csv(text)
    assert rows[0].get("power.draw") is None and rows[0].get("memory.used") == 15.0
    assert rows[1].get("memory.used") is None and rows[1].get("utilization.gpu") == 100.0
    assert rows[0].get("name") == "Tesla K80"
    ms = query_measurements(rows)
    assert {(m.metric, m.labels["gpu"]) for m in ms} == {
        ("memory_used", "0"),
        ("temperature", "0"),
        ("gpu_util", "0"),
        ("temperature", "1"),
        ("gpu_util", "1"),
    }
    fields = ["index", "power.draw", "temperature.gpu"]
    bare = parse_query_csv("0, 61.25, 40\n1, [Not Supported], 41\n", fields=fields)
    assert [r.get("power.draw") for r in bare] == [61.25, None]
    names = parse_query_csv("Tesla K80, GPU-5c6dd8d9-b3bd-4e11-5d86-e33307f46ea5\n", fields=["name", "uuid"])
    assert names[0].values == {"name": "Tesla K80", "uuid": "GPU-5c6dd8d9-b3bd-4e11-5d86-e33307f46ea5"}


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: parse_gpu_list("GPU 0: Tesla K80 (UUID: GPU-1)\nNVIDIA-SMI has failed\n"), "at line 2:"),
        (lambda: parse_gpu_list(""), "no GPU lines"),
        (lambda: parse_query_csv("index, power.draw [W]\n0, 1 W, 7\n"), "row has 3 values"),
        (lambda: parse_query_csv("0, 61.25\n"), "noheader output needs fields"),
        (
            lambda: parse_query_csv("index, power.draw [W]\n0, 1 W\n", fields=["index", "temperature.gpu"]),
            "differ from the queried",
        ),
        (lambda: parse_query_csv(""), "empty --query-gpu output"),
    ],
)
def test_malformed_nvidia_smi(call, needle):
    with pytest.raises(ParseError) as info:
        call()
    assert needle in str(info.value) and "\n" not in str(info.value)
