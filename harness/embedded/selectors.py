"""Label and field selectors with the semantics of the Kubernetes API server.

The embedded API server must answer ``?labelSelector=`` / ``?fieldSelector=`` exactly as kube does, because
kubectl, the official client and the workload controllers (Deployment -> ReplicaSet -> Pod, Service ->
Endpoints, Job -> Pod) all depend on those answers. The rules reproduced here, and why they matter:

* ``!=`` and ``notin`` match objects that do not carry the label at all (kube's ``labels.Requirement``);
  a controller that filters with ``app!=x`` would otherwise miss unlabelled pods.
* A ``metav1.LabelSelector`` that is ``{}`` selects everything, while a missing (``None``) selector selects
  nothing (``metav1.LabelSelectorAsSelector``). A Service without ``spec.selector`` must therefore get no
  endpoints, and a Job or ReplicaSet with ``selector: {}`` would adopt every pod in the namespace.
* A field that an object lacks compares as ``""`` (kube's ``fields.Set`` holds empty strings for unset
  fields), so ``spec.nodeName=`` finds unscheduled pods - exactly what a scheduler's watch uses.
* ``FieldSelector.exact`` lets the server answer ``metadata.name=x`` (``kubectl get pod x -w``) or
  ``spec.nodeName=n`` (the kubelet's watch) from an index rather than a scan.

Error messages start like kube's so that clients and tests see familiar text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.embedded.names import (
    LABEL_VALUE,
    LABEL_VALUE_MAX_LENGTH,
    QUALIFIED_NAME,
    QUALIFIED_NAME_FMT,
    QUALIFIED_NAME_MAX_LENGTH,
    is_dns1123_subdomain,
)

__all__ = [
    "FieldOperator",
    "FieldRequirement",
    "FieldSelector",
    "LabelOperator",
    "LabelRequirement",
    "LabelSelector",
    "SelectorError",
    "field_value",
    "label_selector_from_object",
    "parse_field_selector",
    "parse_label_selector",
    "validate_label_key",
    "validate_label_value",
]


class SelectorError(ValueError):
    """A selector that kube would reject with 400 Bad Request."""


class LabelOperator(StrEnum):
    """Operators of ``labels.Requirement``; the values are how kube prints them in ``Selector.String()``."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_NAME_HELP = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    f"character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}')"
)


def validate_label_key(key: str) -> None:
    """Raise ``SelectorError`` unless ``key`` is a qualified name (``[prefix/]name``) as kube requires.

    Shared with object validation so that ``metadata.labels`` and selectors agree on what a key is.
    """
    prefix, slash, name = key.rpartition("/")
    problem = ""
    if slash and not prefix:
        problem = "prefix part must be non-empty"
    elif prefix and not is_dns1123_subdomain(prefix):
        problem = (
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character"
        )
    elif not name:
        problem = "name part must be non-empty"
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        problem = "name part must be no more than 63 characters"
    elif not QUALIFIED_NAME.fullmatch(name):
        problem = f"name part {_NAME_HELP}"
    if problem:
        raise SelectorError(f'unable to parse requirement: <nil>: Invalid value: "{key}": {problem}')


def validate_label_value(value: str) -> None:
    """Raise ``SelectorError`` unless ``value`` is a valid (possibly empty) label value."""
    if value == "":
        return
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        raise SelectorError(
            f'unable to parse requirement: values[0][{value}]: Invalid value: "{value}": '
            "must be no more than 63 characters"
        )
    if not LABEL_VALUE.fullmatch(value):
        raise SelectorError(
            f'unable to parse requirement: values[0][{value}]: Invalid value: "{value}": a valid label {_NAME_HELP}'
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelRequirement:
    """One ``key op values`` term; ``values`` is sorted so that equal requirements compare equal."""

    key: str
    operator: LabelOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Evaluate the term the way ``labels.Requirement.Matches`` does (absent key satisfies ``!=``/notin)."""
        op = self.operator
        present = self.key in labels
        if op is LabelOperator.EXISTS:
            return present
        if op is LabelOperator.DOES_NOT_EXIST:
            return not present
        if op in (LabelOperator.EQUALS, LabelOperator.DOUBLE_EQUALS, LabelOperator.IN):
            return present and labels[self.key] in self.values
        if op in (LabelOperator.NOT_EQUALS, LabelOperator.NOT_IN):
            return not present or labels[self.key] not in self.values
        # gt / lt: both sides must be integers, otherwise the term does not match (kube logs and says no).
        if not present:
            return False
        try:
            actual = int(labels[self.key])
            bound = int(self.values[0])
        except ValueError:
            return False
        return actual > bound if op is LabelOperator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        op = self.operator
        if op is LabelOperator.EXISTS:
            return self.key
        if op is LabelOperator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in (LabelOperator.IN, LabelOperator.NOT_IN):
            return f"{self.key} {op.value} ({','.join(self.values)})"
        if op is LabelOperator.GREATER_THAN:
            return f"{self.key}>{self.values[0]}"
        if op is LabelOperator.LESS_THAN:
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{op.value}{self.values[0]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelSelector:
    """A conjunction of requirements, or the special *nothing* selector (from a ``None`` API selector).

    ``requirements`` is sorted by key as kube's parser does, so ``str()`` matches what kubectl prints in the
    ``SELECTOR`` column and two spellings of the same selector compare equal.
    """

    requirements: tuple[LabelRequirement, ...] = ()
    matches_nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        """The selector of an empty query string or an empty ``{}`` API selector."""
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        """The selector of an absent (``None``) API selector: kube's ``labels.Nothing()``."""
        return cls(matches_nothing=True)

    @property
    def empty(self) -> bool:
        """True when every object matches, so the server can skip filtering."""
        return not self.requirements and not self.matches_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with ``labels`` (``None`` = no labels) is selected."""
        if self.matches_nothing:
            return False
        actual: Mapping[str, str] = labels or {}
        return all(req.matches(actual) for req in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(req) for req in self.requirements)


def _requirement(key: str, operator: LabelOperator, values: list[str]) -> LabelRequirement:
    """Validate and build a requirement; mirrors ``labels.NewRequirement``'s checks."""
    validate_label_key(key)
    if operator in (LabelOperator.IN, LabelOperator.NOT_IN) and not values:
        raise SelectorError(
            "unable to parse requirement: values: Invalid value: []string{}: "
            "for 'in', 'notin' operators, values set can't be empty"
        )
    if operator in (LabelOperator.EQUALS, LabelOperator.DOUBLE_EQUALS, LabelOperator.NOT_EQUALS) and len(values) != 1:
        raise SelectorError(
            "unable to parse requirement: values: Invalid value: "
            f"{values!r}: exact-match compatibility requires one single value"
        )
    if operator in (LabelOperator.EXISTS, LabelOperator.DOES_NOT_EXIST) and values:
        raise SelectorError(
            "unable to parse requirement: values: Invalid value: "
            f"{values!r}: values set must be empty for exists and does not exist"
        )
    if operator in (LabelOperator.GREATER_THAN, LabelOperator.LESS_THAN):
        if len(values) != 1:
            raise SelectorError(
                "unable to parse requirement: values: Invalid value: "
                f"{values!r}: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        try:
            int(values[0])
        except ValueError:
            raise SelectorError(
                f"unable to parse requirement: values[0]: Invalid value: {values[0]!r}: "
                "for 'Gt', 'Lt' operators, the value must be an integer"
            ) from None
    else:
        for value in values:
            validate_label_value(value)
    return LabelRequirement(key=key, operator=operator, values=tuple(sorted(set(values))))


# --- query-string parser -------------------------------------------------------------------------------------

_SPECIAL = "!=(),<>"
_KEYWORDS = {"in", "notin"}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Token:
    kind: str  # "id", "op" or "end"
    text: str


def _tokens(text: str) -> Iterator[_Token]:
    """Split like kube's selector lexer: identifiers run until whitespace or one of ``!=(),<>``."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _SPECIAL:
            two = text[i : i + 2]
            if two in ("==", "!="):
                yield _Token(kind="op", text=two)
                i += 2
            else:
                yield _Token(kind="op", text=ch)
                i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            word = text[i:j]
            yield _Token(kind="op" if word in _KEYWORDS else "id", text=word)
            i = j
    yield _Token(kind="end", text="")


class _Parser:
    """Recursive-descent parser over ``_tokens``; one instance per ``parse_label_selector`` call."""

    def __init__(self, text: str) -> None:
        self._toks = list(_tokens(text))
        self._pos = 0

    def _peek(self) -> _Token:
        return self._toks[self._pos]

    def _next(self) -> _Token:
        tok = self._toks[self._pos]
        if tok.kind != "end":
            self._pos += 1
        return tok

    @staticmethod
    def _show(tok: _Token) -> str:
        return "EOS" if tok.kind == "end" else tok.text

    def parse(self) -> list[LabelRequirement]:
        reqs: list[LabelRequirement] = []
        while True:
            reqs.append(self._requirement())
            tok = self._next()
            if tok.kind == "end":
                return reqs
            if tok.text != ",":
                raise SelectorError(f"found '{self._show(tok)}', expected: ',' or 'end of string'")

    def _requirement(self) -> LabelRequirement:
        negate = False
        tok = self._next()
        if tok.text == "!" and tok.kind == "op":
            negate = True
            tok = self._next()
        if tok.kind != "id":
            raise SelectorError(f"found '{self._show(tok)}', expected: !, identifier, or 'end of string'")
        key = tok.text
        follow = self._peek()
        if negate:
            if follow.kind == "end" or follow.text == ",":
                return _requirement(key, LabelOperator.DOES_NOT_EXIST, [])
            raise SelectorError(f"found '{self._show(follow)}', expected: ',' or 'end of string'")
        if follow.kind == "end" or follow.text == ",":
            return _requirement(key, LabelOperator.EXISTS, [])
        op_tok = self._next()
        operators = {
            "=": LabelOperator.EQUALS,
            "==": LabelOperator.DOUBLE_EQUALS,
            "!=": LabelOperator.NOT_EQUALS,
            "in": LabelOperator.IN,
            "notin": LabelOperator.NOT_IN,
            ">": LabelOperator.GREATER_THAN,
            "<": LabelOperator.LESS_THAN,
        }
        operator = operators.get(op_tok.text) if op_tok.kind == "op" else None
        if operator is None:
            raise SelectorError(
                f"found '{self._show(op_tok)}', expected: in, notin, =, ==, !=, gt, lt"
                if op_tok.kind != "end"
                else "found 'EOS', expected: in, notin, =, ==, !=, gt, lt"
            )
        if operator in (LabelOperator.IN, LabelOperator.NOT_IN):
            return _requirement(key, operator, self._value_set())
        value_tok = self._peek()
        if value_tok.kind == "id":
            self._next()
            return _requirement(key, operator, [value_tok.text])
        if value_tok.kind == "end" or value_tok.text == ",":
            return _requirement(key, operator, [""])  # "a=" selects the empty value, as in kube
        raise SelectorError(f"found '{self._show(value_tok)}', expected: identifier")

    def _value_set(self) -> list[str]:
        tok = self._next()
        if tok.text != "(":
            raise SelectorError(f"found '{self._show(tok)}', expected: '('")
        values: list[str] = []
        expect_value = True
        while True:
            tok = self._next()
            if tok.kind == "id" and expect_value:
                values.append(tok.text)
                expect_value = False
            elif tok.text == ",":
                if expect_value:
                    values.append("")
                expect_value = True
            elif tok.text == ")":
                if expect_value and values:
                    values.append("")  # "(a,)" carries an empty value, as in kube
                return values
            else:
                raise SelectorError(f"found '{self._show(tok)}', expected: ',', ')' or identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the ``labelSelector`` query parameter (``a=b,c in (x,y),!d``); ``""`` selects everything."""
    if not text.strip():
        return LabelSelector.everything()
    reqs = _Parser(text).parse()
    return LabelSelector(requirements=tuple(sorted(reqs, key=lambda r: r.key)))


_EXPRESSION_OPERATORS = {
    "In": LabelOperator.IN,
    "NotIn": LabelOperator.NOT_IN,
    "Exists": LabelOperator.EXISTS,
    "DoesNotExist": LabelOperator.DOES_NOT_EXIST,
}


def label_selector_from_object(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a ``metav1.LabelSelector`` dict (``matchLabels`` + ``matchExpressions``).

    ``None`` selects nothing and ``{}`` selects everything, following ``metav1.LabelSelectorAsSelector``;
    the controllers rely on the difference (a Service without a selector gets no managed endpoints).
    """
    if sel is None:
        return LabelSelector.nothing()
    reqs: list[LabelRequirement] = []
    for key, value in (sel.get("matchLabels") or {}).items():
        reqs.append(_requirement(str(key), LabelOperator.EQUALS, [str(value)]))
    for expr in sel.get("matchExpressions") or []:
        op_name = expr.get("operator")
        operator = _EXPRESSION_OPERATORS.get(op_name) if isinstance(op_name, str) else None
        if operator is None:
            raise SelectorError(f'"{op_name}" is not a valid label selector operator')
        values = [str(v) for v in expr.get("values") or []]
        reqs.append(_requirement(str(expr.get("key", "")), operator, values))
    return LabelSelector(requirements=tuple(sorted(reqs, key=lambda r: r.key)))


# --- field selectors -------------------------------------------------------------------------------------------


class FieldOperator(StrEnum):
    """The three operators kube's ``fields.ParseSelector`` accepts."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRequirement:
    """``path op value`` where ``path`` is a dotted JSON path such as ``status.phase``."""

    path: str
    operator: FieldOperator
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Compare the stringified field; a missing field is ``""`` like in kube's ``fields.Set``."""
        equal = field_value(obj, self.path) == self.value
        return not equal if self.operator is FieldOperator.NOT_EQUALS else equal

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.path}{self.operator.value}{escaped}"


# Fields kube exposes under a name that is not their JSON path (core/v1 Event's ``source`` is the component).
_FIELD_ALIASES = {"source": "source.component"}


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string a field selector compares against: bools as ``true``/``false``, missing as ``""``."""
    current: Any = obj
    for part in _FIELD_ALIASES.get(path, path).split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None or isinstance(current, Mapping | list):
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSelector:
    """A conjunction of field requirements; empty selects everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        """True when every object matches."""
        return not self.requirements

    @property
    def paths(self) -> frozenset[str]:
        """Field paths used, so the server can reject unsupported ones with kube's 400 message."""
        return frozenset(req.path for req in self.requirements)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` satisfies every requirement."""
        return all(req.matches(obj) for req in self.requirements)

    def exact(self, path: str) -> str | None:
        """The value ``path`` is pinned to by ``=``/``==``, or None; lets the server use an index."""
        for req in self.requirements:
            if req.path == path and req.operator is not FieldOperator.NOT_EQUALS:
                return req.value
        return None

    def __str__(self) -> str:
        return ",".join(str(req) for req in self.requirements)


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except where backslash-escaped, keeping escapes for the later unescape step."""
    parts: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _unescape(value: str) -> str:
    """Undo ``\\\\``, ``\\,`` and ``\\=``; any other escape is invalid in kube too."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence in {value!r}")
            out.append(value[i + 1])
            i += 2
            continue
        if ch in ",=":
            raise SelectorError(f"invalid field selector: unescaped {ch!r} in {value!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def _split_term(term: str) -> tuple[str, FieldOperator, str] | None:
    """Find the first unescaped operator, preferring ``!=`` and ``==`` over ``=`` at the same position."""
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in (FieldOperator.NOT_EQUALS, FieldOperator.DOUBLE_EQUALS, FieldOperator.EQUALS):
            if term.startswith(op.value, i):
                return term[:i], op, term[i + len(op.value) :]
        i += 1
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """Parse the ``fieldSelector`` query parameter (``metadata.name=x,status.phase!=Running``)."""
    if not text.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for raw in _split_unescaped(text, ","):
        term = raw.strip()
        if not term:
            continue
        split = _split_term(term)
        if split is None or not split[0].strip():
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        path, op, value = split
        reqs.append(FieldRequirement(path=path.strip(), operator=op, value=_unescape(value)))
    return FieldSelector(requirements=tuple(reqs))
