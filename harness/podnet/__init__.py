"""The pod network: per-pod network namespaces on a host bridge, Service DNAT and NetworkPolicy in nftables,
Multus-style secondary interfaces and bandwidth shaping.

Independent of the embedded API server (it takes plain pod/Service/policy dicts), so the node agent can use it
under any control plane. One responsibility per module:

- :mod:`.ranges`: the address ranges (inside RFC 2544's 198.18.0.0/15) and the per-cluster names of links/tables
- :mod:`.commands`: running ``ip``/``nft``/``tc`` and deciding whether this host can have a pod network at all
- :mod:`.ipam`: address allocation for the pod network and secondary networks
- :mod:`.host`: the root-namespace side (blackhole route, bridge, guard table), the state dir and the sweep
- :mod:`.pods`: one pod's namespace, veth and addresses
- :mod:`.services`: ClusterIP DNAT rules (pure rendering) and the proxy that applies them everywhere
- :mod:`.policy`: NetworkPolicy -> per-pod nftables rulesets (pure)
- :mod:`.policyagent`: applying compiled policy, only what changed, with Warning events for what is not enforced
- :mod:`.attachments`: NetworkAttachmentDefinitions, Multus' annotations and network-status
- :mod:`.bandwidth`: ``kubernetes.io/{ingress,egress}-bandwidth`` with ``tc tbf``
- :mod:`.dataplane`: the facade the kubelet drives
"""
