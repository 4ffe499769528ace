"""Text that people typed, shown as text: never as HTML or live markdown."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

# Every ASCII character that markdown, Streamlit's colour and icon directives
# (":red[...]", ":material/x:") or LaTeX ("$...$") give a meaning to.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&=\"'])")


def escape(text: object) -> str:
    """Markdown source that renders exactly the characters of `text`."""
    escaped = _SPECIAL.sub(r"\\\1", "" if text is None else str(text))
    # Line breaks stay line breaks (two trailing spaces), nothing else.
    return escaped.replace("\n", "  \n")


def plain(text: object, *, container: Any = None) -> None:
    """Render user text inertly: tags, links and images stay visible characters."""
    (container or st).markdown(escape(text))


def plain_heading(text: object, *, level: int = 3, container: Any = None) -> None:
    (container or st).markdown(f"{'#' * level} {escape(text)}")
