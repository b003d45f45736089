"""Pages for people: the demo showcase and the audit report, from one set of autoescaped Jinja2 templates.

Every page extends ``base.html.j2`` and draws its tables and figures with ``macros.html.j2``; numbers are
formatted by the filters below, once, so the demo and the audit read the same way. Autoescaping is on for every
template: model names, labels and item ids come from users and are never markup.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


class Share(float):
    """A fraction that a table shows as a percent (EVA's certified rate), still a number to the table's layout."""


def number(value: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` decimals, shares as percents, integers with thousands separators,
    missing as "n/a"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, Share):
        return percent(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}"
    return str(value)


def percent(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * float(value):.{digits}f}%"


def data_uri(png: bytes) -> str:
    """Pictures are inlined, so a page is one file that can be mailed or attached to a ticket."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def png_uri(array: np.ndarray, upscale: int = 1) -> str:
    from PIL import Image

    picture = Image.fromarray(array)
    if upscale > 1:
        picture = picture.resize((picture.width * upscale, picture.height * upscale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return data_uri(buffer.getvalue())


def figure_uri(figure) -> str:
    """A matplotlib figure as an inlined PNG; the figure is closed."""
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    pyplot.close(figure)
    return data_uri(buffer.getvalue())


_environment = Environment(
    loader=PackageLoader("service.reports", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a missing value is a bug in the page's context, not an empty cell
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(number=number, percent=percent)


def render_page(template: str, path: Path | None = None, **context: Any) -> str:
    """The page ``template`` (a name under ``templates/``) filled with ``context``; written to ``path`` if given."""
    page = _environment.get_template(template).render(**context)
    if path is not None:
        path.write_text(page, encoding="utf-8")
    return page
