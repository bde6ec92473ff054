"""The embedded control plane's controllers (Job, CronJob, Deployment/ReplicaSet/ReplicationController, DaemonSet,
StatefulSet, Endpoints, EndpointSlice, disruption budgets, autoscaler status, GC, Namespace), run by one
:class:`ControllerManager` on one worker thread."""

from __future__ import annotations

from harness.embedded.controllers.base import ControllerContext, DeletionHook
from harness.embedded.controllers.manager import ControllerManager

__all__ = ["ControllerContext", "ControllerManager", "DeletionHook"]
