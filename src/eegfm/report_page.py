"""The report page: ``templates/report.html.j2`` filled with :func:`eegfm.report_view.page_context`.

The template and its CSS ship inside the package (``eegfm/templates/``,
package data in pyproject.toml) and are read through the package itself,
so an editable install, a wheel and the workflow's ``src/`` on ``sys.path``
all find them. The CSS is inlined: ``report.html`` stays one self-contained
file. Autoescaping is on and undefined names fail: a value the template
names but the context lacks is an error, never an empty cell
(docs/architecture.md §2.7).
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from markupsafe import Markup

TEMPLATE = "report.html.j2"
CSS = "report.css"


@functools.cache
def environment() -> jinja2.Environment:
    """The report's Jinja2 environment: templates from ``eegfm/templates``, autoescaped, strict."""
    return jinja2.Environment(loader=jinja2.PackageLoader("eegfm", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def render_page(context: dict[str, Any]) -> str:
    """The HTML of ``report.html`` from the page context, the CSS inlined in its ``<style>``."""
    env = environment()
    css, _, _ = env.loader.get_source(env, CSS)
    # our own stylesheet, read from the package: marked safe so that quotes in it are not turned into entities
    return env.get_template(TEMPLATE).render(context, css=Markup(css))
