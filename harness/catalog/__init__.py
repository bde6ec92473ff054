"""The workload catalog: ``workloads/<name>/workload.yaml`` specs, strict loading and parameter rendering."""
