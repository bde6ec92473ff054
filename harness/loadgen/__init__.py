"""``k8s-ai-bench load``: the endpoint (URL, TLS, preflight), the prompts (synthetic or ShareGPT) and the command
that loads any OpenAI-compatible endpoint with the serving suite's load generator (:mod:`harness.runners.load`)."""
