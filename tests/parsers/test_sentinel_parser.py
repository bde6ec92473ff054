"""The workload result block: exactly one, valid JSON, known units; errors quote the line."""

from __future__ import annotations

import pytest

from harness.errors import ParseError
from harness.parsers.sentinel import BEGIN, END, parse_sentinel

BODY = (
    '{"measurements": [{"metric": "ttft", "value": 41.5, "unit": "ms", "labels": {"percentile": "99"}}], '
    '"info": {"model": "m"}}'
)


def test_block_among_other_output():
    text = f"starting\nwarning: x\n{BEGIN}\n{BODY}\n{END}\ntrailing noise\n"
    result = parse_sentinel(text)
    (m,) = result.measurements
    assert (m.metric, m.value, m.unit, dict(m.labels)) == ("ttft", 41.5, "ms", {"percentile": "99"})
    assert result.info == {"model": "m"}
    assert (result.begin_line, result.end_line) == (3, 5)


def test_multiline_json_and_constant_prefix():
    prefix = "[1,0]<stdout>:"
    body = '{\n  "measurements": [\n    {"metric": "busbw", "value": 1, "unit": "GB/s", "labels": {"size": 8}}\n  ]\n}'
    text = "\n".join(prefix + line for line in [BEGIN, *body.splitlines(), END])
    (m,) = parse_sentinel(text).measurements
    assert m.labels == {"size": "8"} and m.value == 1.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("just logs\nno block here\n", "no result block"),
        (f"{BEGIN}\n{BODY}\n{END}\n{BEGIN}\n{BODY}\n{END}\n", "more than one result block"),
        (f"{BEGIN}\n{BODY}\n", "not terminated"),
        (f"{BEGIN}\n{BODY}\n{BEGIN}\n{BODY}\n{END}\n", "not terminated"),
        (f"{END}\n", "END marker without"),
        (f'x\n{BEGIN}\n{{"measurements": [\n{END}\n', "invalid JSON"),
        (
            f'{BEGIN}\n{{"measurements": [{{"metric": "a", "value": 1, "unit": "parsecs"}}]}}\n{END}\n',
            "unknown unit 'parsecs'",
        ),
        (f'{BEGIN}\n{{"measurements": [{{"metric": "a", "value": "1", "unit": "ms"}}]}}\n{END}\n', "finite number"),
        (
            f'{BEGIN}\n{{"measurements": [{{"metric": "a", "value": 1, "unit": "ms", "lables": {{}}}}]}}\n{END}\n',
            "unknown keys ['lables']",
        ),
        (f'{BEGIN}\n{{"measurement": []}}\n{END}\n', "unknown top-level keys"),
        (f"{BEGIN}\n[1, 2]\n{END}\n", "must hold a JSON object"),
    ],
)
def test_malformed_blocks_raise_with_excerpt(text, needle):
    with pytest.raises(ParseError) as info:
        parse_sentinel(text)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message  # one line
    assert "line" in message or "near" in message


def test_bad_json_names_the_offending_line():
    text = f'a\nb\n{BEGIN}\n{{\n  "measurements": [,]\n}}\n{END}\n'
    with pytest.raises(ParseError, match=r"at line 5: '  \"measurements\": \[,\]'"):
        parse_sentinel(text)
