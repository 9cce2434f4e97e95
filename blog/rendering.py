"""Markdown to safe HTML, for every piece of markdown the site shows.

Rendering happens once, when content is saved; the stored HTML is then sanitized by nh3
(Ammonia) against an allow-list, so whatever an author pastes — script tags, event handlers,
``javascript:`` links — nothing executable reaches a page.
"""

from __future__ import annotations

import markdown
import nh3

MARKDOWN_EXTENSIONS = ["fenced_code", "codehilite", "tables", "footnotes", "toc", "sane_lists"]
MARKDOWN_CONFIG = {
    # css_class "highlight" matches the Pygments stylesheet in static/css/site.css.
    "codehilite": {"css_class": "highlight", "guess_lang": False},
    "toc": {"permalink": "#", "permalink_class": "anchor"},
}

ALLOWED_TAGS = {
    "a", "abbr", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "img", "kbd", "li", "ol",
    "p", "pre", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"id", "class", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height", "loading"},
    "td": {"align", "style"},
    "th": {"align", "style"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def sanitize_html(html: str) -> str:
    """Strip everything outside the allow-list; links get rel=noopener noreferrer."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        # Table alignment from the tables extension is the only inline style kept.
        filter_style_properties={"text-align"},
    )


def render_markdown(text: str) -> str:
    """Render markdown to sanitized HTML."""
    html = markdown.markdown(
        text,
        extensions=MARKDOWN_EXTENSIONS,
        extension_configs=MARKDOWN_CONFIG,
        output_format="html",
    )
    return sanitize_html(html)
