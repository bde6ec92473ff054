"""fio JSON: 2.x (usec, KiB) and 3.x (nsec, bytes), duplicate keys, preambles, options, measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.fio import fio_measurements, parse_fio

DATA = Path(__file__).resolve().parent.parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def pick(ms, metric, **labels):
    found = [m for m in ms if m.metric == metric and all(m.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (metric, labels, found)
    return found[0]


def test_fio_2_1_4_five_jobs_usec_and_duplicate_keys():
    result = parse_fio(read("fio-2.1.4_5jobs_clat-usec_dup-keys_pkb.json"))
    assert result.fio_version == "fio-2.1.4"
    assert [j.name for j in result.jobs] == [
        "sequential_write",
        "sequential_read",
        "random_write_test",
        "random_read_test",
        "random_read_test_parallel",
    ]
    sw = result.job("sequential_write").direction("write")
    assert sw is not None and sw.iops == 133 and sw.bw_bytes_per_s == 68118 * 1024
    assert sw.io_bytes == 361984 * 1024  # fio 2.x io_bytes is KiB
    assert sw.clat is not None and sw.clat.mean_us == 477734.84 and sw.clat.percentiles_us["99"] == 823296
    assert "0" not in sw.clat.percentiles_us and len(sw.clat.percentiles_us) == 19  # "0.00" placeholders dropped
    assert result.job("sequential_write").direction("read") is None  # no I/O in that direction
    assert result.job("sequential_read").direction("read").iops == 253
    assert result.job("sequential_read").direction("read").bw_bytes_per_s == 129836 * 1024
    rw = result.job("random_write_test").direction("write")
    assert (rw.iops, rw.bw_bytes_per_s, rw.clat.percentiles_us["99"]) == (1610, 6443 * 1024, 1688)
    assert result.job("random_read_test").direction("read").iops == 317
    assert result.job("random_read_test").direction("read").bw_bytes_per_s == 1269 * 1024
    assert result.job("random_read_test_parallel").direction("read").iops == 323
    assert result.job("random_read_test_parallel").direction("read").bw_bytes_per_s == 1292 * 1024
    assert [(d.name, d.util_percent) for d in result.disk_util] == [("sdb", 97.54)]
    assert result.job("sequential_write").job_options == {}


def test_fio_2_17_options_and_percentiles():
    result = parse_fio(read("fio-2.17_2jobs_randread-randwrite_clat-usec-percentiles_pkb.json"))
    assert result.global_options["filename"] == "/dev/disk/by-id/google-pkb-7fb0c9d8-0-data-0-0"
    assert result.disk_util == ()
    read_job = result.job("rand_16k_read_100%-io-depth-1-num-jobs-2")
    r = read_job.direction("read")
    assert (r.iops, r.bw_bytes_per_s) == (8086.673998, 129386 * 1024)
    assert r.clat.mean_us == 238.357679
    assert (r.clat.percentiles_us["50"], r.clat.percentiles_us["99"], r.clat.percentiles_us["99.9"]) == (96, 1352, 1896)
    assert read_job.options["ioengine"] == "libaio" and read_job.options["numjobs"] == "2"
    assert read_job.options["bs"] == "16k" and read_job.options["iodepth"] == "1"
    w = result.job("rand_16k_write_100%-io-depth-1-num-jobs-2").direction("write")
    assert (w.iops, w.bw_bytes_per_s, w.clat.percentiles_us["99"]) == (2457.017193, 39312 * 1024, 2384)
    ms = fio_measurements(result)
    bw = pick(ms, "bw", job="rand_16k_read_100%-io-depth-1-num-jobs-2", direction="read")
    assert bw.unit == "MiB/s" and bw.value == pytest.approx(129386 / 1024)
    assert bw.labels["ioengine"] == "libaio" and bw.labels["direct"] == "1" and bw.labels["rw"] == "randread"
    p999 = pick(ms, "clat", job="rand_16k_read_100%-io-depth-1-num-jobs-2", percentile="99.9")
    assert (p999.value, p999.unit, p999.labels["stat"]) == (1896, "us", "percentile")
    assert pick(ms, "clat", direction="write", stat="mean").value == pytest.approx(
        result.jobs[1].direction("write").clat.mean_us
    )


def test_fio_3_33_nsec_normalised_to_usec_and_bw_bytes():
    text = read("fio-3.33_seqread-1M_generated.json")
    raw = json.loads(text)["jobs"][0]["read"]
    result = parse_fio(text)
    d = result.job("seqread").direction("read")
    assert d.io_bytes == raw["io_bytes"] == 16 * 1024 * 1024
    assert d.bw_bytes_per_s == raw["bw_bytes"]
    assert d.clat.mean_us == pytest.approx(raw["clat_ns"]["mean"] / 1000)
    assert d.clat.percentiles_us["99"] == pytest.approx(raw["clat_ns"]["percentile"]["99.000000"] / 1000)
    assert result.fio_version == "fio-3.33"
    assert pick(fio_measurements(result), "iops", job="seqread").value == raw["iops"]


def test_fio_3_33_randrw_both_directions():
    result = parse_fio(read("fio-3.33_randrw-70-30_generated.json"))
    job = result.job("randrw")
    assert {d.direction for d in job.directions} == {"read", "write"}
    assert job.options["ioengine"] == "psync"
    r, w = job.direction("read"), job.direction("write")
    assert r.io_bytes + w.io_bytes == 16 * 1024 * 1024
    assert 0.6 < r.io_bytes / (r.io_bytes + w.io_bytes) < 0.8


def test_fio_3_33_global_options_merge_and_group_reporting():
    result = parse_fio(read("fio-3.33_2jobs-global-options_generated.json"))
    assert [j.name for j in result.jobs] == ["randwrite", "randread"]
    ms = fio_measurements(result)
    iops = pick(ms, "iops", job="randread", direction="read")
    assert {k: iops.labels[k] for k in ("rw", "ioengine", "direct", "bs", "iodepth")} == {
        "rw": "randread",
        "ioengine": "psync",
        "direct": "1",
        "bs": "4k",
        "iodepth": "1",
    }
    grouped = parse_fio(read("fio-3.33_randread-numjobs2-group_jsonplus_generated.json"))
    assert len(grouped.jobs) == 1 and grouped.jobs[0].options["numjobs"] == "2"
    assert grouped.jobs[0].direction("read").io_bytes == 2 * 8 * 1024 * 1024


def test_duplicate_keys_last_wins():
    text = (
        '{"jobs": [{"jobname": "j", "job options": {"bs": "4k", "bs": "1M"}, '
        '"read": {"io_bytes": 1, "io_kbytes": 0, "bw": 1, "iops": 1, "runtime": 1}}]}'
    )
    assert parse_fio(text).jobs[0].options["bs"] == "1M"


def test_preamble_and_status_interval_documents():
    doc = read("fio-3.33_seqread-1M_generated.json")
    text = "fio: this platform does not support process shared mutexes, forcing use of threads\n" + doc + doc
    assert parse_fio(text).job("seqread").direction("read").iops > 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("fio: engine libaio not loadable\n", "no JSON object"),
        ('{"fio version": "fio-3.33", "jobs": [\n  {"jobname": "a",\n', "invalid JSON"),
        ('{"fio version": "fio-3.33"}\n', "no 'jobs' list"),
        ('{"jobs": [{"groupid": 0}]}', "has no 'jobname'"),
        ('{"jobs": [{"jobname": "a", "read": {"bw": "x", "iops": 1}}]}', "must be a number"),
    ],
)
def test_malformed_fio_raises_with_excerpt(text, needle):
    with pytest.raises(ParseError) as info:
        parse_fio(text)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_truncated_real_output_names_the_line():
    text = read("fio-3.33_seqread-1M_generated.json")
    cut = "\n".join(text.splitlines()[:40])
    with pytest.raises(ParseError, match=r"invalid JSON .* at line \d+: "):
        parse_fio(cut)


def test_gtod_reduce_latency_blocks_give_no_latency_measurement():
    """fio 3.33 with gtod_reduce=1 (kubestr's default job sets it; kastenhq/kubestr issue #144): every latency block
    reads {min 0, max 0, mean 0, N: 0}. fio measured no latency, so there is no clat/lat measurement, and a latency
    bar reads no-data (a failure) instead of passing on 0 us."""
    from harness.thresholds import evaluate_thresholds
    from harness.thresholds.loader import load_profile

    result = parse_fio(read("fio-3.33_randread-gtod_reduce-kubestr-like_generated.json"))
    read_dir = result.jobs[0].direction("read")
    assert read_dir is not None and read_dir.iops == 73142.857143
    assert read_dir.clat is None and read_dir.lat is None and read_dir.slat is None
    measurements = fio_measurements(result)
    assert {m.metric for m in measurements} - {"disk_util"} == {"bw", "iops", "runtime"}
    profile = load_profile("cpu-only")
    bar = next(t for t in profile.thresholds_for("fio") if t.id == "fio-randread-clat-p99")
    relabelled = [m.with_labels({"job": "randread"}) for m in measurements]
    [check] = evaluate_thresholds([bar], relabelled)
    assert check.status.value == "no-data"


def test_lat_percentiles_are_exported_as_total_latency():
    """fio 3.33 with lat_percentiles=1 clat_percentiles=0: the percentiles are on lat_ns only; they become `lat`
    measurements (p99 93696 ns = 93.696 us)."""
    result = parse_fio(read("fio-3.33_randread-lat_percentiles-no-clat-percentiles_generated.json"))
    measurements = fio_measurements(result)
    p99 = [
        m
        for m in measurements
        if m.metric == "lat" and m.labels.get("stat") == "percentile" and m.labels.get("percentile") == "99"
    ]
    assert [round(m.value, 3) for m in p99] == [93.696]
    assert not [m for m in measurements if m.metric == "clat" and m.labels.get("stat") == "percentile"]
    mean = next(m for m in measurements if m.metric == "clat" and m.labels["stat"] == "mean")
    assert round(mean.value, 3) == 59.047
