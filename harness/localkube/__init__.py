"""The real control-plane lane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and the real
operators (JobSet, Kueue, KubeRay, MPI Operator), built from the Go modules pinned in ``deploy/local-kube/go.mod``
and run as processes on 127.0.0.1.

It exists so that the kube path, ``deploy/rbac.yaml`` and every operator flow meet real Kubernetes components before
a user's cluster does. Nodes are kwok's (emulated: nothing runs on them, and every result says so).
"""
