"""Markdown rendering: code highlighting, tables, footnotes, a table of contents with heading
anchors, lazy images with their size, and a sanitizer that leaves nothing executable."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from blog.rendering import reading_time, render_document, render_markdown

# Each entry tries a different way to get script into the page.
HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src="x" onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="&#106;avascript:alert(1)">entity</a>',
    '<a href="java\tscript:alert(1)">tab</a>',
    "[markdown link](javascript:alert(1))",
    "![markdown image](javascript:alert(1))",
    "[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<svg onload="alert(1)"><circle r="5"/></svg>',
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<form action="https://evil.example"><input name=q><button>go</button></form>',
    '<div style="background:url(javascript:alert(1))">styled</div>',
    '<p style="position:fixed;top:0">overlay</p>',
    "<style>body{display:none}</style>",
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    "<a href='#' onclick='alert(1)'>inline handler</a>",
    "```html\n<script>alert('in a code block is fine: escaped')</script>\n```",
    "`<script>alert(1)</script>`",
    "<div><p>unclosed <script>alert(1)",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<img src="/static/img/favicon.svg" alt="ok" onmouseover="alert(1)">',
]

EXECUTABLE_TAGS = {
    "script", "iframe", "object", "embed", "svg", "math", "style", "link", "meta", "base",
    "form", "input", "button", "noscript", "frame", "frameset", "applet", "template",
}  # fmt: skip
C0_AND_SPACE = "".join(map(chr, range(0x21)))
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}


class Elements(HTMLParser):
    """Every start tag with its attributes, entities decoded as a browser would."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    handle_startendtag = handle_starttag


def assert_inert(markup: str) -> None:
    for tag, attrs in Elements(markup).tags:
        assert tag not in EXECUTABLE_TAGS, markup
        for name, value in attrs.items():
            assert not name.startswith("on"), markup
            if name in URL_ATTRIBUTES:
                # As a browser's URL parser reads it: tabs and newlines removed anywhere,
                # C0 controls and spaces stripped at the ends.
                url = re.sub(r"[\t\n\r]", "", html.unescape(value)).strip(C0_AND_SPACE)
                scheme = url.lower()
                assert not scheme.startswith(("javascript:", "vbscript:", "data:")), markup
            if name == "style":
                assert re.fullmatch(r"\s*text-align:\s*\w+;?\s*", value), markup


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_markdown_renders_with_nothing_executable(source):
    rendered = render_document(f"# Title\n\n## Part\n\n{source}\n\n## Next\n\ntext\n")
    assert_inert(rendered.html)
    assert_inert(rendered.toc_html)
    assert "<script" not in rendered.html.lower()


def test_the_whole_corpus_in_one_document_is_inert():
    assert_inert(render_markdown("\n\n".join(HOSTILE)))


def test_code_in_a_code_block_is_shown_as_text():
    out = render_markdown("```html\n<script>alert(1)</script>\n```")
    assert "&lt;script&gt;" in out or "&lt;</span><span" in out
    assert "alert" in out


def test_fenced_code_is_highlighted_by_pygments():
    out = render_markdown('```python\ndef greet(name):\n    return f"hi {name}"\n```')
    assert '<div class="highlight">' in out
    # Pygments token classes: keyword and function name.
    assert '<span class="k">def</span>' in out
    assert '<span class="nf">greet</span>' in out


def test_tables_and_footnotes_render():
    out = render_markdown(
        "| op | order |\n|:---|---:|\n| load | acquire |\n\nA claim.[^1]\n\n[^1]: The source.\n"
    )
    assert "<table>" in out
    assert "<td" in out
    assert "acquire" in out
    assert 'style="text-align:right"' in out
    assert 'class="footnote"' in out
    assert 'href="#fn:1"' in out


def test_table_of_contents_links_heading_anchors():
    rendered = render_document("## Roots\n\ntext\n\n### The stack\n\ntext\n\n## Sweeping\n")
    assert '<h2 id="roots">' in rendered.html
    assert 'class="anchor" href="#roots"' in rendered.html
    toc = Elements(rendered.toc_html).tags
    hrefs = [attrs["href"] for tag, attrs in toc if tag == "a"]
    assert hrefs == ["#roots", "#the-stack", "#sweeping"]


def test_no_table_of_contents_for_a_single_heading():
    assert render_document("## Only one\n\ntext").toc_html == ""
    assert render_document("just text").toc_html == ""


def test_images_load_lazily_with_their_size(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "blog").mkdir()
    Image.new("RGB", (640, 360), "navy").save(tmp_path / "blog" / "diagram.png")
    out = render_markdown(
        "![A diagram](/media/blog/diagram.png)\n\n![Remote](https://example.org/x.png)"
    )
    images = [attrs for tag, attrs in Elements(out).tags if tag == "img"]
    local, remote = images
    assert local["loading"] == "lazy"
    assert (local["width"], local["height"]) == ("640", "360")
    assert local["alt"] == "A diagram"
    assert remote["loading"] == "lazy"
    assert "width" not in remote


def test_image_paths_cannot_escape_the_media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "media").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "secret.png")
    out = render_markdown("![x](/media/../secret.png)")
    assert "width" not in out


def test_reading_time_counts_words():
    assert reading_time("word " * 10) == 1
    assert reading_time("word " * 2300) == 10
