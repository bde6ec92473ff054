"""perftest parser on the real superbench loopback log (server + client concatenated, TABs in the settings boxes)
and on constructed files in the exact layouts of the latency table and of --report_gbits (tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.perftest import parse_perftest, perftest_measurements

DATA = Path(__file__).resolve().parents[1] / "data"
LOOPBACK = DATA / "perftest_ib_write_bw_8M_loopback_superbench.log"
LATENCY = DATA / "perftest_constructed_ib_read_lat_client_percentiles.txt"
GBITS = DATA / "perftest_constructed_ib_write_bw_roce_report-gbits_client.txt"


def test_superbench_loopback_log_has_client_then_server_tables() -> None:
    results = parse_perftest(LOOPBACK.read_text())
    assert [(r.test, r.side) for r in results] == [("ib_write_bw", "client"), ("ib_write_bw", "server")]
    client = results[0]
    assert (client.device, client.link_type, client.unit) == ("ib0", "IB", "MB/sec")
    assert client.settings["Connection type"] == "RC" and client.settings["Mtu"] == "4096[B]"
    assert client.settings["rdma_cm QPs"] == "OFF"  # the key with a TAB before its colon
    (row,) = client.rows
    assert (row.size, row.iterations) == (8388608, 20000)
    assert row.values["bw_avg"] == pytest.approx(24056.72 * 8e-3)  # MB/sec (1e6 B/s) -> Gbit/s
    assert row.values["msg_rate"] == pytest.approx(0.003007)
    by_side = {m.labels["side"]: m for m in perftest_measurements(results) if m.metric == "ib_write_bw"}
    assert by_side["client"].value == pytest.approx(192.45376) and by_side["client"].unit == "Gbit/s"
    assert by_side["server"].labels["device"] == "ib0"


def test_report_gbits_table_over_roce() -> None:
    (result,) = parse_perftest(GBITS.read_text())
    assert (result.unit, result.link_type, result.settings["GID index"]) == ("Gb/sec", "Ethernet", "3")
    measurements = {m.metric: m for m in perftest_measurements([result], extra_labels={"node": "gpu-1"})}
    assert measurements["ib_write_bw"].value == pytest.approx(388.45)
    assert measurements["ib_write_bw_peak"].value == pytest.approx(388.51)
    assert measurements["ib_write_bw"].labels == {
        "node": "gpu-1", "test": "ib_write_bw", "device": "mlx5_3", "link": "Ethernet", "size": "65536"
    }  # fmt: skip


def test_latency_table_headline_is_t_typical() -> None:
    (result,) = parse_perftest(LATENCY.read_text())
    assert (result.test, result.kind) == ("ib_read_lat", "lat")
    by = {m.metric: m.value for m in perftest_measurements([result])}
    assert by == {
        "ib_read_lat": 1.91, "ib_read_lat_avg": 1.93, "ib_read_lat_p99": 2.24, "ib_read_lat_p999": 4.53,
        "ib_read_lat_max": 4.53,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no test title"),
        ("                    RDMA_Write BW Test\n Device : mlx5_0\n", "no result table"),
        (
            "  RDMA_Write BW Test\n #bytes #iterations BW peak[Gb/sec] BW average[Gb/sec]\n 65536 5000 oops 1\n",
            "non-numeric",
        ),
        ("  RDMA_Write BW Test\n #bytes #iterations BW peak[Gb/sec]\n 65536 5000 1.0\n", "BW average"),
        ("  RDMA_Read Latency Test\n #bytes #iterations t_min[usec]\n 2 1000 1.0\n", "t_typical"),
    ],
)
def test_bad_outputs_fail_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_perftest(text)


def test_settings_box_separated_by_spaces() -> None:
    """nminoru/pib issue #4: a real `ib_atomic_bw` run whose settings box separates its two columns with spaces, not
    TABs (`Dual-port       : OFF          Device         : pib_1`): the device is read, not swallowed."""
    (result,) = parse_perftest((DATA / "perftest_ib_atomic_bw_space-separated-box_pib-issue4.txt").read_text())
    assert (result.test, result.device, result.link_type) == ("ib_atomic_cmp_and_swap_bw", "pib_1", "IB")
    assert result.settings["Dual-port"] == "OFF" and result.settings["Transport type"] == "IB"
    assert result.settings["Outstand reads"] == "16"
    (row,) = result.rows
    assert (row.size, row.iterations, row.values["bw_avg"]) == (8, 1000, pytest.approx(1.67 * 8e-3))


def test_server_and_client_interleaved_in_one_log() -> None:
    """The real superbench loopback sections interleaved line by line as one pod's log shows a server and a client
    started together (tests/data/README.md): both boxes, both headers, then both rows. Two tables, one per side."""
    text = (DATA / "perftest_ib_write_bw_8M_loopback_server-client-interleaved_from-superbench.log").read_text()
    results = parse_perftest(text)
    assert sorted(r.side for r in results) == ["client", "server"]
    for result in results:
        assert (result.test, result.device, result.unit) == ("ib_write_bw", "ib0", "MB/sec")
        (row,) = result.rows
        assert (row.size, row.values["bw_avg"]) == (8388608, pytest.approx(24056.72 * 8e-3))
    assert len([m for m in perftest_measurements(results) if m.metric == "ib_write_bw"]) == 2


def test_post_list_title_and_report_gbits_over_roce() -> None:
    """linux-rdma/perftest issue #273: `RDMA_Write Post List BW Test` (words between the verb and BW), RoCE,
    --report_gbits: the title is recognised and the 8-byte row read."""
    (result,) = parse_perftest((DATA / "perftest_ib_write_bw_post-list_gbits_roce_perftest-issue273.txt").read_text())
    assert (result.test, result.device, result.link_type, result.unit) == ("ib_write_bw", "ib0", "Ethernet", "Gb/sec")
    assert result.settings["Post List"] == "128" and result.settings["GID index"] == "2"
    (row,) = result.rows
    assert (row.size, row.iterations, row.values["bw_avg"], row.values["msg_rate"]) == (8, 224958464, 0.48, 7.498617)
