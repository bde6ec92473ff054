"""nccl-tests tables of every era, the -J JSON file, and the transports named by NCCL INFO lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.nccl import (
    Transport,
    large_message_busbw,
    nccl_measurements,
    op_name,
    parse_nccl_tests,
    parse_nccl_tests_all,
    parse_nccl_tests_json,
    transports,
)

DATA = Path(__file__).resolve().parent.parent / "data"
SUPERBENCH = "nccl-tests_allreduce_1node-8gpu_a100_2020-format-redop-noroot_superbench.log"
PKB = "nccl-tests_allreduce_2node-2rank_k80_validation0_pkb.txt"

# Written here (not captured) in the 2023+ layout: util.cu's printf formats, with Rank/bus-id/footer lines as in
# NVIDIA/nccl-tests issue #294 and kvcache-ai/Mooncake PR #3484, and mpirun --tag-output prefixes as in
# aws/aws-k8s-tester PR #503.
MODERN = (DATA / "nccl-tests_constructed_2023-format_group-mpirun-prefix.txt").read_text()

# ~2019 layout (NVIDIA/nccl-tests issue #24 header): `error` column holding a max error, no root column.
ERROR_ERA = (DATA / "nccl-tests_constructed_2019-format_error-column.txt").read_text()

# util.cu with -I (per-iteration columns) and timestamps: the header and row built from its printf formats.
PER_ITER = (DATA / "nccl-tests_constructed_2025-format_per-iter-timestamp.txt").read_text()


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_superbench_2020_format_redop_without_root():
    result = parse_nccl_tests(read(SUPERBENCH), program="all_reduce_perf")
    assert result.nranks == 8 and result.hosts == ("localhost",)
    assert {(r.host, r.busid, r.name, r.group) for r in result.ranks} == {("localhost", "0x00", "A100-SXM4-40GB", None)}
    assert [r.device for r in result.ranks] == list(range(8)) and result.ranks[0].pid == 112424
    assert result.params["validation"] == "0" and result.params["maxBytes"] == "8589934592"
    assert result.wrong_column == "error"
    assert len(result.rows) == 34
    assert [r.size for r in result.rows[:2]] == [0, 0] and result.rows[-1].size == 8589934592
    assert all(r.root is None and r.redop == "sum" and r.dtype == "float" for r in result.rows)
    assert all(r.out_of_place.wrong is None and r.in_place.wrong is None for r in result.rows)  # N/A
    last = result.rows[-1]
    assert (last.out_of_place.busbw_gbps, last.in_place.busbw_gbps) == (235.26, 235.03)
    assert (last.out_of_place.time_us, last.out_of_place.algbw_gbps) == (63896, 134.44)
    assert (result.oob_count, result.oob_ok, result.avg_busbw_gbps) == (0, True, 68.4048)
    assert large_message_busbw(result) == 235.26
    assert large_message_busbw(result, placement="in-place") == 235.03
    assert large_message_busbw(result, min_size=1 << 30) == 235.26


def test_pkb_two_nodes_root_column_and_na_wrong():
    result = parse_nccl_tests(read(PKB))
    assert result.op is None and result.nranks == 2
    assert result.hosts == ("pkb-2b6a393d-2", "pkb-2b6a393d-3")
    assert {r.name for r in result.ranks} == {"Tesla K80"}
    assert len(result.rows) == 11 and result.rows[0].size == 1 << 20 and result.rows[-1].size == 1 << 30
    assert all(r.root == -1 and r.out_of_place.wrong is None and r.in_place.wrong is None for r in result.rows)
    assert result.rows[-1].out_of_place.busbw_gbps == 0.61 and result.rows[-1].in_place.busbw_gbps == 0.61
    assert (result.oob_count, result.oob_ok, result.avg_busbw_gbps) == (0, True, 0.565546)
    assert result.wrong_column == "#wrong"


def test_measurements_scheme():
    result = parse_nccl_tests(read(PKB), program="/opt/nccl-tests/build/all_reduce_perf_mpi")
    ms = nccl_measurements(result, extra_labels={"nodes": "2"})
    busbw = [m for m in ms if m.metric == "busbw" and m.labels["size"] == str(1 << 30)]
    assert {m.labels["placement"] for m in busbw} == {"out-of-place", "in-place"}
    m = busbw[0]
    assert (m.value, m.unit) == (0.61, "GB/s")
    assert m.labels == {
        "nodes": "2",
        "op": "all_reduce",
        "nranks": "2",
        "dtype": "float",
        "size": "1073741824",
        "redop": "sum",
        "root": "-1",
        "placement": "out-of-place",
    }
    assert {m.metric for m in ms} == {"busbw", "algbw", "time", "busbw_avg", "oob_values"}  # no wrong: all N/A
    assert next(m for m in ms if m.metric == "time").unit == "us"
    assert next(m for m in ms if m.metric == "busbw_avg").value == 0.565546


def test_modern_format_with_group_prefixes_and_info_lines():
    result = parse_nccl_tests(MODERN)
    assert result.program == "all_reduce_perf" and result.op == "all_reduce" and result.version == "2.19.7"
    assert result.nranks == 2 and result.ranks[1].host == "h100-4" and result.ranks[0].group == 0
    assert result.ranks[0].busid == "0000:18:00" and result.ranks[0].name == "NVIDIA H100 80GB HBM3"
    assert [r.size for r in result.rows] == [1048576, 4294967296, 8589934592]
    assert result.rows[1].out_of_place.wrong == 2 and result.rows[1].in_place.wrong == 0
    assert result.avg_bw_check == "FAILED" and result.params["unalign"] == "0"
    assert large_message_busbw(result) == 46.43 and large_message_busbw(result, placement="max") == 46.43
    wrong = [m for m in nccl_measurements(result) if m.metric == "wrong" and m.value > 0]
    assert [(m.labels["size"], m.labels["placement"], m.unit) for m in wrong] == [
        ("4294967296", "out-of-place", "count")
    ]
    assert transports(MODERN) == {"NET/IB", "NET/IB/GDRDMA"}


def test_error_era_max_error_values():
    result = parse_nccl_tests(ERROR_ERA, program="all_reduce_perf")
    assert result.wrong_column == "error" and result.rows[1].out_of_place.wrong == 2e-07
    ms = nccl_measurements(result)
    assert {m.unit for m in ms if m.metric == "max_error"} == {"ratio"} and not [m for m in ms if m.metric == "wrong"]


def test_per_iteration_and_timestamp_columns():
    result = parse_nccl_tests(PER_ITER)
    row = result.rows[0]
    assert row.out_of_place.per_iter_us == {"i_min": 9.0, "i_max": 12.0, "i_p99": 11.5, "i_cv%": 3.2}
    assert row.in_place.time_us == 9.9 and row.in_place.wrong == 0


def test_several_tables_in_one_log():
    text = read(PKB) + MODERN
    results = parse_nccl_tests_all(text)
    assert [len(r.rows) for r in results] == [11, 3]
    assert [r.op for r in results] == [None, "all_reduce"]
    with pytest.raises(ParseError, match="2 result tables"):
        parse_nccl_tests(text)


def test_large_message_busbw_without_large_enough_rows():
    result = parse_nccl_tests(read(PKB))
    with pytest.raises(ParseError, match=r"no row with size >= 8589934592 B \(largest measured: 1073741824 B\)"):
        large_message_busbw(result, min_size=8 << 30)


def test_op_name():
    assert op_name("all_reduce_perf") == "all_reduce"
    assert op_name("/build/alltoall_perf_mpi") == "alltoall"


def test_truncated_log_raises_or_is_allowed():
    lines = read(SUPERBENCH).splitlines()
    cut = "\n".join(lines[:30]) + "\n"
    with pytest.raises(ParseError, match=r"truncated output.* at line 30: ' +8192 +2048 +float"):
        parse_nccl_tests(cut)
    partial = parse_nccl_tests(cut, allow_truncated=True)
    assert len(partial.rows) == 14 and partial.avg_busbw_gbps is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("# nThread 1 nGpus 1\nnothing else\n", "no result table"),
        (read(PKB).replace("    14868    0.56    0.56    N/A", "    14868    0.56    N/A"), "row has 12 fields"),
        (read(PKB).replace("4710.4", "47x0.4"), "not a number: '47x0.4'"),
        ("\n".join(read(PKB).splitlines()[:9]) + "\n# Out of bounds values : 0 OK\n", "has no rows"),
    ],
)
def test_malformed_tables_raise_with_excerpt(text, needle):
    with pytest.raises(ParseError) as info:
        parse_nccl_tests(text)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_row_error_quotes_line_number_and_line():
    text = read(PKB).replace("4710.4", "47x0.4")
    with pytest.raises(ParseError, match=r"at line 11: '     2097152 +524288"):
        parse_nccl_tests(text)


# -J JSON: no real file was found; this document follows the writer in nccl-tests src/util.cu (JSON_FILE_VERSION 2).
JSON_DOC = {
    "version": 2,
    "start_time": "2025-06-01 10:00:00",
    "args": ["./build/all_gather_perf", "-b", "8", "-J", "x.json"],
    "env": [],
    "nccl_version": 22703,
    "config": {
        "nthreads": 1,
        "ngpus": 8,
        "minimum_bytes": 8,
        "maximum_bytes": 1024,
        "step_factor": 2,
        "validation": 1,
        "blocking_collectives": "false",
        "devices": [
            {
                "rank": 0,
                "group": 0,
                "pid": 10,
                "hostname": "n1",
                "device": 0,
                "device_hex": "0000:07:00",
                "device_info": "NVIDIA H100 80GB HBM3",
            }
        ],
    },
    "results": [
        {
            "size": 8,
            "count": 2,
            "type": "float",
            "redop": "none",
            "root": "    -1",
            "out_of_place": {"time": 10.0, "alg_bw": 0.0, "bus_bw": 0.0, "nwrong": 0.0},
            "in_place": {"time": 9.0, "alg_bw": 0.0, "bus_bw": 0.0, "nwrong": None},
            "actual_iterations": 20,
            "experiment_name": "",
        },
        {
            "size": 1024,
            "count": 256,
            "type": "float",
            "redop": "none",
            "root": "    -1",
            "out_of_place": {"time": 12.0, "alg_bw": 0.08, "bus_bw": 0.07, "nwrong": 0.0},
            "in_place": {"time": 11.0, "alg_bw": 0.09, "bus_bw": 0.08, "nwrong": 0.0},
            "actual_iterations": 20,
            "experiment_name": "",
        },
    ],
    "out_of_bounds": {"count": 0, "okay": "true"},
    "average_bus_bandwidth": {"bandwidth": 0.0375, "okay": "unchecked"},
    "errors": [],
    "end_time": "2025-06-01 10:00:01",
}


def test_json_output_file():
    result = parse_nccl_tests_json(json.dumps(JSON_DOC))
    assert result.op == "all_gather" and result.nranks == 1 and result.ranks[0].busid == "0000:07:00"
    assert [r.size for r in result.rows] == [8, 1024] and result.rows[0].root == -1
    assert result.rows[0].in_place.wrong is None and result.rows[1].out_of_place.busbw_gbps == 0.07
    assert (result.oob_count, result.oob_ok, result.avg_bw_check, result.avg_busbw_gbps) == (0, True, None, 0.0375)
    assert large_message_busbw(result, placement="in-place") == 0.08
    with pytest.raises(ParseError, match="no 'results' list"):
        parse_nccl_tests_json('{"version": 2}')
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_nccl_tests_json('{"version": 2, "results": [')


def test_transports_from_info_lines():
    lines = read("nccl-info_transport-lines_format-samples.txt").splitlines()
    assert transports(lines[0]) == {Transport.P2P_IPC}
    assert transports(lines[1]) == {"NET/Socket"}
    assert transports(lines[2]) == {"P2P/CUMEM"}
    assert transports(lines[3]) == {"NET/IB", "NET/IB/GDRDMA"}
    assert transports(lines[4]) == {"P2P/direct"}
    assert transports(lines[5]) == {"SHM"}
    assert transports(lines[6]) == set()  # NVLS available is not NVLS used
    assert transports(lines[7]) == set()  # 0 nvls channels
    assert transports(lines[7].replace(" 0 nvls", " 16 nvls")) == {"NVLS"}
    assert transports(lines[8:]) == {"NET/IB"}  # the selected network counts without a "via" line
    assert transports("\n".join(lines)) == {
        "P2P/IPC",
        "NET/Socket",
        "P2P/CUMEM",
        "NET/IB",
        "NET/IB/GDRDMA",
        "P2P/direct",
        "SHM",
    }
    plugin = "h:1:2 [0] NCCL INFO Channel 00/0 : 0[0] -> 8[0] [send] via NET/IBext_v8/0/GDRDMA"
    assert transports(plugin) == {"NET/IB", "NET/IB/GDRDMA"}
    # a network plugin we do not name (hypothetical name): reported as NET/<name>, GDRDMA kept
    assert transports("h:1:2 [0] NCCL INFO Channel 00 : 0[0] -> 1[1] via NET/Some Plugin/0/GDRDMA") == {
        "NET/Some Plugin",
        "NET/Some Plugin/GDRDMA",
    }
    assert transports(read(SUPERBENCH)) == set()


# --- real outputs from public bug reports (tests/data/README.md, section 5: facts each must yield) ---------------

ISSUE37 = "nccl-tests_allgather_1node-8gpu_v100_2020-no-hash-prefix_oob-2-FAILED_nccl-tests-issue37.txt"
PR503_CUT = "nccl-tests_allreduce_p5.48xlarge_tag-output_cut-mid-row_aws-k8s-tester-pr503.txt"


def _corruption(measurements):
    """The no-corruption verdict's sentence when it fails (the rule lives in harness.thresholds.verdicts)."""
    from harness.thresholds.model import RuleKind, Status
    from harness.thresholds.verdicts import judge

    (check,) = judge(None, "nccl-allreduce", RuleKind.NO_CORRUPTION, measurements)
    return check.detail if check.status is Status.FAILED else None


def test_2020_log_without_hash_prefixes_and_a_failed_footer():
    """NVIDIA/nccl-tests issue #37: header, footer printed without '#', `error` column, `2 FAILED`: parsed, and
    the out-of-bounds count is corruption although there is no #wrong column."""
    result = parse_nccl_tests(read(ISSUE37), program="all_gather_perf")
    assert result.wrong_column == "error" and len(result.rows) == 1
    row = result.rows[0]
    assert (row.size, row.dtype, row.redop, row.root) == (4294967296, "float", None, None)
    assert (row.out_of_place.busbw_gbps, row.in_place.busbw_gbps) == (129.05, 128.84)
    assert (row.out_of_place.wrong, row.in_place.wrong) == (1.0, 1.0)  # max error 1e+00, not a count
    assert (result.oob_count, result.oob_ok, result.avg_busbw_gbps) == (2, False, 128.942)
    measurements = nccl_measurements(result)
    assert not [m for m in measurements if m.metric == "wrong"]
    assert _corruption(measurements) == "data corruption: nccl-tests reported 2 out-of-bounds value(s) (FAILED)"


def test_failed_footer_with_every_wrong_zero_is_corruption():
    """The rows of a real 2024 log (aws/aws-k8s-tester PR #503, every #wrong 0) with the footer line of NVIDIA/
    nccl-tests issue #356 (`Out of bounds values : 56 FAILED`): spliced here, both lines real. The footer counts
    every process's errors, the rows only rank 0's."""
    rows = "\n".join(read(PR503_CUT).splitlines()[:6])
    text = rows + "\n[1,0]<stdout>:# Out of bounds values : 56 FAILED\n[1,0]<stdout>:# Avg bus bandwidth    : 0 \n"
    result = parse_nccl_tests(text, program="all_reduce_perf")
    assert all(r.out_of_place.wrong == 0 and r.in_place.wrong == 0 for r in result.rows)
    assert _corruption(nccl_measurements(result)) == (
        "data corruption: nccl-tests reported 56 out-of-bounds value(s) (FAILED)"
    )


def test_log_cut_mid_row_gives_a_parse_error_or_the_complete_rows():
    """aws/aws-k8s-tester PR #503 (p5.48xlarge, mpirun --tag-output): the posted log ends inside a row
    (`          64            16`), as a killed pod or `kubectl logs --limit-bytes` leaves it."""
    text = read(PR503_CUT)
    with pytest.raises(ParseError, match=r"truncated output: .*row has 2 fields.* at line 7"):
        parse_nccl_tests(text)
    partial = parse_nccl_tests(text, allow_truncated=True)
    assert [r.size for r in partial.rows] == [8, 16, 32]
    assert partial.rows[-1].out_of_place.time_us == 22.25


def test_a_short_row_inside_the_table_is_still_malformed():
    lines = read(PKB).splitlines()
    lines[11] = lines[11][:40]  # the second data row cut short, rows follow: not a truncated log
    with pytest.raises(ParseError, match=r"row has \d+ fields.*a line cut short"):
        parse_nccl_tests("\n".join(lines) + "\n", allow_truncated=True)


def test_nranks_from_the_highest_rank_and_nccls_own_count():
    """A log whose first Rank line is missing (a `--tail`ed log, as NVIDIA/nccl-tests issue #185's excerpt starts at
    `Rank  1`) still has 2 ranks; NCCL's `nranks N` Init line wins over printed Rank lines."""
    lines = read(PKB).splitlines()
    rank0 = next(i for i, line in enumerate(lines) if "Rank  0" in line)
    cut = "\n".join(lines[:rank0] + lines[rank0 + 1 :]) + "\n"
    result = parse_nccl_tests(cut, program="all_reduce_perf")
    assert len(result.ranks) == 1 and result.nranks == 2
    assert {m.labels["nranks"] for m in nccl_measurements(result)} == {"2"}
    init = "server2:23920:24013 [7] NCCL INFO comm 0x7f5780001ca0 rank 15 nranks 32 cudaDev 7 nvmlDev 7 - Init COMPLETE"
    with_init = "\n".join([*lines[:rank0], init, *lines[rank0:]]) + "\n"  # the line as posted in issue #29
    assert parse_nccl_tests(with_init).nranks == 32


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nccl-info_roce_h100-2node_net-ib-using-roce_nccl-tests-issue185.txt", {"NET/IB"}),
        ("nccl-info_efa_p4d_using-network-aws-libfabric_nccl-issue527.txt", {"NET/AWS Libfabric"}),
        (
            "nccl-info_efa_h200_via-net-aws-libfabric-gdrdma_nccl-issue1597.txt",
            {"NET/AWS Libfabric", "NET/AWS Libfabric/GDRDMA"},
        ),
        ("nccl-info_ib-sharp_h100_using-network-ibext-v6_nccl-tests-issue294.txt", {"NET/IB"}),
    ],
)
def test_transport_from_the_selected_network(name, expected):
    """Real NCCL_DEBUG=INFO excerpts without any "via" connection line: the selected network still names the
    transport, so the verdict never asks for NCCL_DEBUG=INFO when it was on."""
    from judging import transport

    from harness.thresholds.model import Status

    found = transports(read(name))
    assert found == expected
    verdict = transport(found, scope="inter-node", rdma_available=True)
    assert verdict.status is Status.PASSED, verdict.message


def test_2025_single_gpu_alltoall_with_na_in_place():
    """NVIDIA/nccl-tests issue #287 (RTX 5090, 2025): one rank, busbw 0 for a 1-rank alltoall, in-place #wrong N/A."""
    result = parse_nccl_tests(
        read("nccl-tests_alltoall_1gpu_rtx5090_2025-format_na-inplace_nccl-tests-issue287.txt"), program="alltoall_perf"
    )
    (row,) = result.rows
    assert (result.op, result.nranks, row.redop, row.root) == ("alltoall", 1, "none", -1)
    assert (row.out_of_place.algbw_gbps, row.out_of_place.wrong, row.in_place.wrong) == (1715.44, 0.0, None)
    assert (result.oob_count, result.oob_ok, result.avg_busbw_gbps) == (0, True, 0.0)


def test_2_20_two_node_log_cut_after_a_size():
    """NVIDIA/dgx-spark-playbooks PR #103: nccl-tests 2.20.0 on two GB10 nodes, the posted block ends at a bare
    size (`131072`): four complete rows with allow_truncated, a truncation error without."""
    text = read("nccl-tests_allreduce_2node-gb10_v2.20.0_cut-mid-row_dgx-spark-playbooks-pr103.txt")
    result = parse_nccl_tests(text, allow_truncated=True)
    assert (result.version, result.op, result.nranks) == ("2.20.0", "all_reduce", 2)
    assert result.hosts == ("spark-d708", "spark-dbf4") and [r.size for r in result.rows] == [8192, 16384, 32768, 65536]
    assert result.rows[-1].in_place.busbw_gbps == 1.01
    with pytest.raises(ParseError, match="truncated output"):
        parse_nccl_tests(text)
