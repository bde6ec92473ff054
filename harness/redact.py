"""Redaction of secrets before anything is written to a run record or a report.

Bearer tokens, passwords, kubeconfig credentials and anything under a key that names a secret are replaced by
``<redacted>``; free text is scrubbed for ``Bearer <token>`` and ``token=...``/``password=...`` forms.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

REDACTED = "<redacted>"
_SECRET_KEY = re.compile(
    r"^(.*[_-])?(token|password|passwd|secret|credentials?|authorization|api[_-]?key|access[_-]?key|"
    r"client[_-]key(-data)?|client-certificate-data|certificate-authority-data|secret[_-]access[_-]key)$",
    re.IGNORECASE,
)
_TEXT_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:token|password|passwd|secret|api[_-]?key)\s*[=:]\s*)[^\s,;&\"']+"),
)


_ANY_SECRET = re.compile(r"(?i)bearer|token|passw|secret|api[_-]?key")


@lru_cache(maxsize=65_536)
def redact_text(text: str) -> str:
    """``text`` with secret-looking values replaced. Cached: a run record repeats the same label values and unit
    strings hundreds of thousands of times (an imported nccl sweep, a 1,000-node panel), and the cheap search for
    a trigger word first skips both substitutions for nearly all of them."""
    if not _ANY_SECRET.search(text):
        return text
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact(value: Any, *, key: str = "") -> Any:
    """A copy of JSON-shaped ``value`` with secrets removed (keys naming secrets, secret-looking text)."""
    if key and _SECRET_KEY.match(key) and not isinstance(value, dict | list):
        return REDACTED if value not in (None, "", False) else value
    if isinstance(value, dict):
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
