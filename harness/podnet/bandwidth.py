"""``kubernetes.io/ingress-bandwidth`` / ``egress-bandwidth`` as ``tc tbf`` (token bucket) qdiscs.

Ingress (towards the pod) is shaped on the host-side veth's egress; egress (from the pod) on the pod-side eth0's
egress inside the pod's namespace, where the pod cannot change it without CAP_NET_ADMIN. (CNI's bandwidth plugin
redirects the host-side ingress to an ifb device instead; ``tbf`` on the pod side gives the same limit with one
qdisc less.) Latency/loss emulation (``netem``) is not available on this kernel (``tc qdisc add ... netem``
answers "Specified qdisc kind is unknown"), so only rates are offered.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.podnet import commands
from harness.quantity import parse_quantity

INGRESS = "kubernetes.io/ingress-bandwidth"
EGRESS = "kubernetes.io/egress-bandwidth"
MIN_RATE_BPS = 1_000  # kube's bandwidth plugin refuses less than 1 kbit/s
MAX_RATE_BPS = 32 * 10**12
LATENCY_MS = 25


class BandwidthError(ValueError):
    pass


def parse_rate(text: str, annotation: str) -> int:
    """Bits per second from a quantity (``10M`` = 10,000,000 bit/s, as kube reads it)."""
    try:
        value = int(parse_quantity(text))
    except ValueError as exc:
        raise BandwidthError(f"{annotation}: {exc}") from None
    if not MIN_RATE_BPS <= value <= MAX_RATE_BPS:
        raise BandwidthError(f"{annotation}: {text} is outside {MIN_RATE_BPS} bit/s .. 32 Tbit/s")
    return value


def limits(annotations: Mapping[str, str]) -> tuple[int | None, int | None]:
    """(ingress, egress) bits per second from the pod's annotations."""
    ingress = parse_rate(annotations[INGRESS], INGRESS) if INGRESS in annotations else None
    egress = parse_rate(annotations[EGRESS], EGRESS) if EGRESS in annotations else None
    return ingress, egress


def tbf_args(rate_bps: int) -> list[str]:
    """tbf needs a bucket of at least one timer tick's worth of bytes (and one MTU): 10 ms of rate, >= 16 KiB."""
    burst = max(rate_bps // 8 // 100, 16 * 1024)
    return ["tbf", "rate", f"{rate_bps}bit", "burst", str(burst), "latency", f"{LATENCY_MS}ms"]


def apply(*, host_veth: str, netns: str, ingress_bps: int | None, egress_bps: int | None) -> None:
    if ingress_bps is not None:
        commands.run(["tc", "qdisc", "replace", "dev", host_veth, "root", *tbf_args(ingress_bps)])
    if egress_bps is not None:
        commands.run(["tc", "qdisc", "replace", "dev", "eth0", "root", *tbf_args(egress_bps)], netns=netns)
