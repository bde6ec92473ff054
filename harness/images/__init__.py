"""Workload images: which ones the catalog references, building and mirroring them, and whether a target can pull
them before a run spends its time on ImagePullBackOff.

- :mod:`harness.images.catalog`: every image reference of ``workloads/*/workload.yaml``, ours or upstream, and the
  Dockerfile each of ours is built from.
- :mod:`harness.images.tools`: the container tool present (docker, podman or buildah) and how to call it.
- :mod:`harness.images.debian_base`: base images made from Debian packages (debootstrap + import) for machines
  that reach a Debian mirror but no container registry.
- :mod:`harness.images.build`: ``k8s-ai-bench images build``.
- :mod:`harness.images.pin`: the release workflow's step that pins workload.yaml to the released digests.
- :mod:`harness.images.pullcheck`: the pull preflight of ``run`` and ``doctor``.
"""
