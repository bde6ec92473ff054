"""k8s-ai-bench: benchmarking and conformance for Kubernetes AI infrastructure."""

__version__ = "0.1.0"
