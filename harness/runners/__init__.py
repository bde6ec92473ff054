"""Runners: execute a rendered workload on the target and hand back what it printed (DESIGN.md section 3)."""
