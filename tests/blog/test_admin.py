"""Authoring in the admin: the post form with its live preview, which renders exactly as
the site does; cover images need alt text; the admin pages carry no inline script."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from blog.models import Post

pytestmark = pytest.mark.django_db

PREVIEW_URL = "/admin/blog/post/live-preview/"


def form_data(**overrides) -> dict:
    data = {
        "title": "Written in the admin",
        "slug": "written-in-the-admin",
        "summary": "A post from the form.",
        "body": "## Intro\n\n```python\nprint('hi')\n```\n",
        "status": "published",
        "publish_at_0": "2026-01-05",
        "publish_at_1": "10:00:00",
        "series_order": "",
        "cover_alt": "",
        "old_slugs-TOTAL_FORMS": "0",
        "old_slugs-INITIAL_FORMS": "0",
        "old_slugs-MIN_NUM_FORMS": "0",
        "old_slugs-MAX_NUM_FORMS": "1000",
    }
    return data | overrides


def test_post_form_loads_the_live_preview_without_inline_script(staff_client):
    response = staff_client.get("/admin/blog/post/add/")
    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(
        r'<script src="/static/js/blog-preview\.[0-9a-f]+\.js" data-preview-url="'
        + PREVIEW_URL + '" defer>', page
    )  # fmt: skip
    assert "blog-admin" in page
    # The site's CSP allows no inline script: every <script> has a src or is data.
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=", page)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_live_preview_renders_the_unsaved_post_with_the_site_template(staff_client, tag):
    response = staff_client.post(
        PREVIEW_URL,
        {
            "title": "Preview title",
            "summary": "Preview summary",
            "body": "## One\n\n```c\nint main(void) { return 0; }\n```\n\n## Two\n",
            "tags": [str(tag.pk)],
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Preview title</h1>" in page
    assert '<div class="highlight">' in page
    assert 'class="post__toc"' in page
    assert f'href="{tag.get_absolute_url()}"' in page
    assert "/static/css/site." in page  # the site's own stylesheet
    assert "Preview of unsaved changes" in page
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert not Post.objects.filter(title="Preview title").exists()


def test_live_preview_says_whether_the_post_will_be_public(staff_client):
    def notice(**fields) -> str:
        page = staff_client.post(PREVIEW_URL, {"title": "t", "body": "b", **fields}).text
        return page[page.index("data-preview-notice") :][:300]

    assert "a draft, visible only to staff" in notice(status="draft")
    assert "this post is public" in notice(
        status="published", publish_at_0="2020-01-01", publish_at_1="08:00:00"
    )
    assert "scheduled for 1 January 2999" in notice(
        status="published", publish_at_0="2999-01-01", publish_at_1="08:00:00"
    )
    assert "this post is public" in notice(status="published", publish_at_0="not a date")


def test_live_preview_sanitizes_like_the_site(staff_client):
    response = staff_client.post(
        PREVIEW_URL,
        {"title": "x", "body": '<script>alert(1)</script><img src=x onerror="alert(2)">'},
    )
    page = response.content.decode()
    assert "alert(1)" not in page
    assert "onerror" not in page


def test_live_preview_is_staff_only_and_post_only(staff_client):
    response = Client().post(PREVIEW_URL, {"title": "x", "body": "y"})
    assert response.status_code == 302
    assert "/admin/login/" in response.headers["Location"]
    assert staff_client.get(PREVIEW_URL).status_code == 405


def test_admin_creates_a_post_rendered_once_with_author_and_reading_time(staff_client):
    response = staff_client.post("/admin/blog/post/add/", form_data())
    assert response.status_code == 302, response.content.decode()[:3000]
    post = Post.objects.get(slug="written-in-the-admin")
    assert post.author.username == "editor"
    assert '<div class="highlight">' in post.body_html
    assert post.reading_time == 1
    assert post.is_live


def test_cover_image_requires_alt_text(staff_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 630), "teal").save(buffer, format="PNG")

    def upload() -> SimpleUploadedFile:
        return SimpleUploadedFile("cover.png", buffer.getvalue(), content_type="image/png")

    response = staff_client.post("/admin/blog/post/add/", form_data(cover_image=upload()))
    assert response.status_code == 200
    assert "Describe the cover image" in response.content.decode()
    assert not Post.objects.filter(slug="written-in-the-admin").exists()

    response = staff_client.post(
        "/admin/blog/post/add/",
        form_data(cover_image=upload(), cover_alt="A teal rectangle"),
    )
    assert response.status_code == 302
    post = Post.objects.get(slug="written-in-the-admin")
    assert (post.cover_width, post.cover_height) == (1200, 630)
    page = staff_client.get(post.get_absolute_url()).content.decode()
    assert 'alt="A teal rectangle" width="1200" height="630"' in page
    assert f'<meta property="og:image" content="http://testserver{post.cover_image.url}">' in page
    assert '<meta name="twitter:card" content="summary_large_image">' in page
    # The upload is served.
    assert staff_client.get(post.cover_image.url).status_code == 200


def test_change_list_filters_and_search(staff_client, make_post):
    make_post(title="Findable in admin")
    make_post(title="A draft in admin", status=Post.Status.DRAFT)
    page = staff_client.get("/admin/blog/post/?q=Findable").content.decode()
    assert "Findable in admin" in page
    assert "A draft in admin" not in page
    page = staff_client.get("/admin/blog/post/?status__exact=draft").content.decode()
    assert "A draft in admin" in page
    assert "Findable in admin" not in page
