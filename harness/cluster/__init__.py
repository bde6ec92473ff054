"""Everything the harness does to a cluster: target start/connect, capabilities, namespaces, manifests, waiting,
evidence collection and sweeping of leftovers (DESIGN.md section 3)."""
