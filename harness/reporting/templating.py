"""The one Jinja2 environment every report page and chart renders with (``report.html``, ``history.html``, the
inline SVG charts of :mod:`harness.reporting.svg`).

One environment, so every template gets the same guarantees: autoescape on for every template, whatever its name
(text from a run record is escaped by the engine, never by hand at a call site), and undefined names raise (a typo
in a template is an error, not an empty cell). Templates live in ``templates/`` beside this module.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from markupsafe import Markup

__all__ = ["environment", "render"]


@functools.cache
def environment() -> jinja2.Environment:
    """The shared environment (built once; a loaded template is cached by Jinja2 itself, and with ``auto_reload``
    off a cached template is not checked against its file's mtime again: a report renders one chart template per
    chart, and the package's templates do not change while it runs)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness.reporting", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def render(template: str, **context: Any) -> Markup:
    """``template`` rendered with ``context``: markup whose every inserted value was escaped, so another
    template may embed it as is (a chart inside a page)."""
    return Markup(environment().get_template(template).render(**context))
