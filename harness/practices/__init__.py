"""The seed's best practices as read-only checks: accelerator reservation, priorities and quotas, network
isolation, topology labels, storage tiers and Pod Security on the namespaces that run AI workloads."""
