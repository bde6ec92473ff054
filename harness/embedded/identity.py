"""Who a request comes from: the cluster admin's bearer token, or a ServiceAccount token the target signed.

The embedded target authenticates but does not authorize: every authenticated request is allowed (README, "Known
limits"). Authentication still matters: an in-cluster client (``load_incluster_config``) presents the projected
ServiceAccount token mounted into its pod, and ``kubectl auth whoami`` must name the right subject.

ServiceAccount tokens are JWTs as kube's TokenRequest issues them (ES256 here, signed by a key made at each start;
``iss`` https://kubernetes.default.svc.cluster.local, ``sub`` system:serviceaccount:<ns>:<name>, the
``kubernetes.io`` claim naming the namespace, ServiceAccount and bound pod). A token is accepted while it has not
expired and the ServiceAccount (and bound pod) it names still exist with the same uid, as kube checks.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_AUDIENCES = (ISSUER,)
MIN_EXPIRATION_S = 600  # kube refuses shorter TokenRequests
DEFAULT_EXPIRATION_S = 3600
MAX_EXPIRATION_S = 48 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """``authentication.k8s.io/v1`` UserInfo of the requester."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


#: The holder of the kubeconfig's bearer token: cluster admin, as kubeadm's admin.conf user is.
ADMIN = UserInfo(username="kubernetes-admin", groups=("kubeadm:cluster-admins", "system:authenticated"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# (kind, namespace, name) -> the stored object or None: how the authenticator checks a token's subjects exist.
Lookup = Callable[[str, str, str], dict[str, Any] | None]


class ServiceAccountTokens:
    """Issues and verifies ServiceAccount JWTs with one signing key per embedded target start."""

    def __init__(self, lookup: Lookup) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._kid = _b64(secrets.token_bytes(12))
        self._lookup = lookup

    def issue(
        self,
        service_account: dict[str, Any],
        *,
        audiences: tuple[str, ...] = DEFAULT_AUDIENCES,
        expiration_s: int = DEFAULT_EXPIRATION_S,
        pod: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> tuple[str, int]:
        """(token, expiry as a Unix time) for a stored ServiceAccount, optionally bound to a pod."""
        meta = service_account["metadata"]
        issued = int(now if now is not None else time.time())
        expiry = issued + expiration_s
        scope: dict[str, Any] = {
            "namespace": meta["namespace"],
            "serviceaccount": {"name": meta["name"], "uid": meta["uid"]},
        }
        if pod is not None:
            scope["pod"] = {"name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
        claims = {
            "aud": list(audiences),
            "exp": expiry,
            "iat": issued,
            "nbf": issued,
            "iss": ISSUER,
            "jti": secrets.token_hex(16),
            "kubernetes.io": scope,
            "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}",
        }
        header = {"alg": "ES256", "kid": self._kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{_b64(signature)}", expiry

    def authenticate(self, token: str, *, now: float | None = None) -> UserInfo | None:
        """The ServiceAccount a valid token names; None for anything else (bad signature, expired, subject gone)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = _unb64(parts[2])
            if len(signature) != 64:
                return None
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            self._key.public_key().verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature):
            return None
        current = now if now is not None else time.time()
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER or not current < float(claims.get("exp", 0)):
            return None
        scope = claims.get("kubernetes.io") or {}
        namespace = scope.get("namespace", "")
        account = scope.get("serviceaccount") or {}
        stored = self._lookup("ServiceAccount", namespace, account.get("name", ""))
        if stored is None or stored["metadata"].get("uid") != account.get("uid"):
            return None
        extra: dict[str, list[str]] = {}
        bound_pod = scope.get("pod")
        if bound_pod:
            pod = self._lookup("Pod", namespace, bound_pod.get("name", ""))
            if pod is None or pod["metadata"].get("uid") != bound_pod.get("uid"):
                return None
            extra = {
                "authentication.kubernetes.io/pod-name": [bound_pod["name"]],
                "authentication.kubernetes.io/pod-uid": [bound_pod["uid"]],
            }
        return UserInfo(
            username=f"system:serviceaccount:{namespace}:{account['name']}",
            uid=str(account.get("uid", "")),
            groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
            extra=extra,
        )
