"""The embedded target: a one-machine, Kubernetes-API-compatible control plane (DESIGN.md section 4)."""
