"""User text stays inert: the markdown the page sends shows the characters as typed."""

import pytest
from markdown_it import MarkdownIt

from ui.text import escape

HOSTILE = [
    "<script>alert('x')</script>",
    "[click me](https://evil.example/)",
    "![img](https://evil.example/pixel.png)",
    "**bold** _it_ `code` # heading",
    ":red[alarm] :material/warning: $x^2$",
    "<img src=x onerror=alert(1)>",
    "line one\nline two",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_no_tags_links_or_images(text):
    html = MarkdownIt("commonmark", {"html": True}).render(escape(text))
    for tag in ("<script", "<a ", "<img", "<strong", "<em", "<code", "<h1"):
        assert tag not in html


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_keeps_every_visible_character(text):
    html = MarkdownIt("commonmark").render(escape(text))
    visible = (
        html.replace("<p>", "")
        .replace("</p>", "")
        .replace("<br />", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&amp;", "&")
        .replace("\n", "")
    )
    assert visible == text.replace("\n", "")
