"""Domain probes: what a suite creates on a cluster to find out one property, and the evidence it brings back.

A probe is more than an API call and less than a workload: a claim that must bind (:mod:`.storage`), a Kueue queue
with a quota the check controls (:mod:`.kueue`), NetworkPolicies applied between probe phases (:mod:`.netpolicy`),
the accelerator device plugins, DRA claims and health (:mod:`.accelerators`), where a gang of pods landed on the
topology (:mod:`.topology`). Each module holds its inline manifests and returns plain values or measurements.

Why a package of its own, not ``harness.cluster``: the cluster layer only talks to clusters (apply, wait, logs,
exec, discovery) and knows no domain; probes know one domain each and use the cluster layer through a
:class:`~harness.cluster.target.ClusterHandle` (a Target), never a bare API client. Probes never judge: the
verdicts on their evidence are rules in :mod:`harness.thresholds.verdicts`.
"""
