"""Markdown to safe HTML, for every piece of markdown the site shows.

Rendering happens once, when content is saved; the stored HTML is then sanitized by nh3
(Ammonia) against an allow-list, so whatever an author pastes — script tags, event handlers,
``javascript:`` links — nothing executable reaches a page.

Posts also get a table of contents (from the toc extension's heading anchors) and images
that load lazily with their intrinsic size, so the page does not jump as they arrive.
"""

from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.etree.ElementTree import Element

import markdown
import nh3
from django.conf import settings
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

logger = logging.getLogger(__name__)

MARKDOWN_CONFIG = {
    # css_class "highlight" matches the Pygments stylesheet in static/css/site.css.
    "codehilite": {"css_class": "highlight", "guess_lang": False},
    "toc": {"permalink": "#", "permalink_class": "anchor", "permalink_title": "Link here"},
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
    "img": {"src", "alt", "width", "height", "loading", "decoding"},
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


def local_image_size(src: str) -> tuple[int, int] | None:
    """Width and height of an image this site serves itself (media uploads or static files),
    read from the file's header; None for remote or missing images."""
    parts = urlsplit(src)
    if parts.scheme or parts.netloc:
        return None
    url_path = posixpath.normpath(unquote(parts.path))
    path: Path | None = None
    if settings.MEDIA_URL and url_path.startswith(settings.MEDIA_URL):
        root = Path(settings.MEDIA_ROOT).resolve()
        candidate = (root / url_path[len(settings.MEDIA_URL) :]).resolve()
        path = candidate if candidate.is_relative_to(root) else None
    elif url_path.startswith(settings.STATIC_URL):
        from django.contrib.staticfiles import finders

        found = finders.find(url_path[len(settings.STATIC_URL) :])
        path = Path(found) if isinstance(found, str) else None
    if path is None or not path.is_file():
        return None
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as exc:  # Pillow's UnidentifiedImageError is an OSError
        logger.warning("image_size_failed src=%s error=%s", src, exc)
        return None


class _LazyImages(Treeprocessor):
    def run(self, root: Element) -> None:
        for img in root.iter("img"):
            img.set("loading", "lazy")
            img.set("decoding", "async")
            if not (img.get("width") and img.get("height")):
                size = local_image_size(img.get("src", ""))
                if size:
                    img.set("width", str(size[0]))
                    img.set("height", str(size[1]))


class LazyImagesExtension(Extension):
    """Every image gets ``loading=lazy`` and, when the site holds the file, its size."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.treeprocessors.register(_LazyImages(md), "lazy_images", 0)


def _extensions() -> list:
    return [
        "fenced_code", "codehilite", "tables", "footnotes", "toc", "sane_lists",
        LazyImagesExtension(),
    ]  # fmt: skip


@dataclass(frozen=True)
class Rendered:
    """A rendered document: its sanitized HTML and table of contents (empty when the
    document has fewer than two headings, where a contents list would only add noise)."""

    html: str
    toc_html: str


def _count_headings(tokens: list[dict]) -> int:
    return sum(1 + _count_headings(token["children"]) for token in tokens)


def render_document(text: str) -> Rendered:
    """Render markdown to sanitized HTML plus its table of contents."""
    md = markdown.Markdown(
        extensions=_extensions(), extension_configs=MARKDOWN_CONFIG, output_format="html"
    )
    html = md.convert(text)
    toc = md.toc if _count_headings(md.toc_tokens) >= 2 else ""
    return Rendered(html=sanitize_html(html), toc_html=sanitize_html(toc) if toc else "")


def render_markdown(text: str) -> str:
    """Render markdown to sanitized HTML."""
    return render_document(text).html


_WORD = re.compile(r"\w+")


def reading_time(text: str, words_per_minute: int = 230) -> int:
    """Minutes to read ``text`` at a typical adult silent-reading speed, at least one."""
    return max(1, round(len(_WORD.findall(text)) / words_per_minute))
