"""Kubernetes name and label syntax, as apimachinery's ``pkg/util/validation`` defines it.

Why a module of its own: object admission, label selectors, the cluster spec and the pod network's attachment
requests all decide what a valid name, label key or label value is. One definition keeps them agreeing with each
other and with kube-apiserver; each caller keeps its own wording of the error (they answer different clients).

The predicates check length and format together, as ``IsDNS1123Label`` and friends do; the compiled patterns are
exported for callers that report the two separately (kube's messages name the length and the format apart); match
them with ``fullmatch``, as Go's ``$`` does not match before a trailing newline the way Python's does.
"""

from __future__ import annotations

import re

__all__ = [
    "C_IDENTIFIER",
    "DNS1035_LABEL",
    "DNS1035_LABEL_MAX_LENGTH",
    "DNS1123_LABEL",
    "DNS1123_LABEL_MAX_LENGTH",
    "DNS1123_SUBDOMAIN",
    "DNS1123_SUBDOMAIN_MAX_LENGTH",
    "LABEL_VALUE",
    "LABEL_VALUE_MAX_LENGTH",
    "QUALIFIED_NAME",
    "QUALIFIED_NAME_FMT",
    "QUALIFIED_NAME_MAX_LENGTH",
    "is_c_identifier",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_label_value",
    "is_qualified_name",
    "is_qualified_name_part",
]

# Each rule as apimachinery declares it: the pattern's text (kube quotes some in its messages), the longest value
# allowed, the compiled pattern.

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_LABEL = re.compile(rf"^{_DNS1123_LABEL_FMT}$")

DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL_FMT}(\.{_DNS1123_LABEL_FMT})*$")

DNS1035_LABEL_MAX_LENGTH = 63
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

#: The name part of a qualified name (label and annotation keys, resource names).
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_MAX_LENGTH = 63
QUALIFIED_NAME = re.compile(rf"^{QUALIFIED_NAME_FMT}$")

LABEL_VALUE_MAX_LENGTH = 63
LABEL_VALUE = re.compile(rf"^({QUALIFIED_NAME_FMT})?$")

C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_dns1123_label(value: str) -> bool:
    """A lowercase RFC 1123 label (namespace, container, volume names): at most 63 characters."""
    return len(value) <= DNS1123_LABEL_MAX_LENGTH and DNS1123_LABEL.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    """A lowercase RFC 1123 subdomain (most object names, label key prefixes): at most 253 characters."""
    return len(value) <= DNS1123_SUBDOMAIN_MAX_LENGTH and DNS1123_SUBDOMAIN.fullmatch(value) is not None


def is_dns1035_label(value: str) -> bool:
    """A lowercase RFC 1035 label (Service names): starts with a letter, at most 63 characters."""
    return len(value) <= DNS1035_LABEL_MAX_LENGTH and DNS1035_LABEL.fullmatch(value) is not None


def is_qualified_name_part(value: str) -> bool:
    """The name part of a qualified name: 1 to 63 alphanumerics, '-', '_' or '.', alphanumeric at both ends."""
    return len(value) <= QUALIFIED_NAME_MAX_LENGTH and QUALIFIED_NAME.fullmatch(value) is not None


def is_qualified_name(value: str) -> bool:
    """``[prefix/]name`` with a DNS subdomain prefix (non-empty when the slash is there), as ``IsQualifiedName``."""
    prefix, slash, name = value.rpartition("/")
    if slash and not is_dns1123_subdomain(prefix):
        return False
    return is_qualified_name_part(name)


def is_label_value(value: str) -> bool:
    """A label value: empty, or a qualified name's name part (at most 63 characters)."""
    return len(value) <= LABEL_VALUE_MAX_LENGTH and LABEL_VALUE.fullmatch(value) is not None


def is_c_identifier(value: str) -> bool:
    """A C identifier: a letter or '_', then letters, digits or '_' (``IsCIdentifier``)."""
    return C_IDENTIFIER.fullmatch(value) is not None
