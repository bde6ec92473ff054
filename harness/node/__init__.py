"""The node agent: the host as a node of any Kubernetes API server.

The kubelet (:mod:`harness.node.kubelet`) reaches its control plane only through :class:`NodeApi`; the
embedded target hands it an in-process view of its store, and :class:`harness.node.agent.NodeAgent` hands it a
REST view of a real kube-apiserver (a watch of the pods bound to the node, informer caches of Services and
Endpoints), registers the host Node, keeps its Lease and serves the kubelet endpoints the API server proxies to.
"""
