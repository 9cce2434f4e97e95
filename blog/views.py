"""Pages of the blog: the post list, a post, tag and year archives, search, the staff
preview and robots.txt. Reads go through :meth:`PostQuerySet.published`, so drafts and
scheduled posts never leak into a public page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import InvalidPage, Paginator
from django.db.models import Count, Prefetch, QuerySet
from django.db.models.functions import ExtractYear
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.static import serve

from .models import Post, SlugRedirect, Tag

PAGE_SIZE = 10


def _listed(posts: QuerySet[Post]) -> QuerySet[Post]:
    return posts.select_related("series").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by("name"))
    )


def _page(request: HttpRequest, posts: QuerySet[Post]):
    """The requested page of ``posts``; a page number that is not a page is a 404."""
    paginator = Paginator(_listed(posts), PAGE_SIZE)
    try:
        return paginator.page(request.GET.get("page") or 1)
    except InvalidPage as exc:
        raise Http404(str(exc)) from exc


def _listing(request: HttpRequest, posts: QuerySet[Post], **context: Any) -> dict[str, Any]:
    """Context of a paginated list; pages after the first are their own canonical URL."""
    page = _page(request, posts)
    context["page_obj"] = page
    if page.number > 1:
        base = settings.SITE_URL or f"{request.scheme}://{request.get_host()}"
        context["canonical_url"] = f"{base}{request.path}?page={page.number}"
    return context


def post_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "blog/post_list.html",
        _listing(request, Post.objects.published(), heading="Blog"),
    )


def _post_context(post: Post, *, preview: bool) -> dict[str, Any]:
    series_posts = list(post.series_posts()) if post.pk else []
    position = next((i for i, p in enumerate(series_posts) if p.pk == post.pk), None)
    return {
        "post": post,
        "tags": list(post.tags.all()) if post.pk else [],
        "related": list(post.related()) if post.pk else [],
        "series_posts": series_posts,
        "series_previous": series_posts[position - 1] if position else None,
        "series_next": (
            series_posts[position + 1]
            if position is not None and position + 1 < len(series_posts)
            else None
        ),
        "preview": preview,
    }


def post_detail(request: HttpRequest, slug: str) -> HttpResponse:
    post = Post.objects.published().select_related("series").filter(slug=slug).first()
    if post is None:
        moved = SlugRedirect.objects.select_related("post").filter(old_slug=slug).first()
        if moved is not None and moved.post.is_live:
            return HttpResponsePermanentRedirect(moved.post.get_absolute_url())
        raise Http404("No such post.")
    return render(request, "blog/post_detail.html", _post_context(post, preview=False))


def _preview_response(response: HttpResponse) -> HttpResponse:
    # Drafts must stay out of search engines even if a preview link leaks.
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@staff_member_required
def post_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Any post as it will look, drafts and scheduled ones included: staff only."""
    post = get_object_or_404(Post.objects.select_related("series"), pk=pk)
    response = render(request, "blog/post_detail.html", _post_context(post, preview=True))
    return _preview_response(response)


def render_unsaved_preview(request: HttpRequest, post: Post, tags: list[Tag]) -> HttpResponse:
    """The post page for a post being edited and not saved (the admin's live preview)."""
    post.render()
    context = _post_context(post, preview=True) | {"tags": tags, "live_preview": True}
    return _preview_response(render(request, "blog/post_detail.html", context))


def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    tag = get_object_or_404(Tag, slug=slug)
    return render(
        request,
        "blog/post_list.html",
        _listing(
            request,
            Post.objects.published().filter(tags=tag),
            tag=tag,
            heading=f"Posts tagged “{tag.name}”",
        ),
    )


def tag_list(request: HttpRequest) -> HttpResponse:
    tags = (
        Tag.objects.filter(posts__in=Post.objects.published())
        .annotate(count=Count("posts"))
        .order_by("name")
    )
    return render(request, "blog/tag_list.html", {"tags": tags})


def archive(request: HttpRequest) -> HttpResponse:
    years = (
        Post.objects.published()
        .annotate(year=ExtractYear("publish_at"))
        .values("year")
        .annotate(count=Count("pk"))
        .order_by("-year")
    )
    return render(request, "blog/archive.html", {"years": years})


def archive_year(request: HttpRequest, year: int) -> HttpResponse:
    posts = Post.objects.published().filter(publish_at__year=year)
    if not posts.exists():
        raise Http404("No posts that year.")
    return render(
        request,
        "blog/post_list.html",
        _listing(request, posts, year=year, heading=f"Posts from {year}"),
    )


def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    context: dict[str, Any] = {"query": query, "heading": "Search"}
    if query:
        context["page_obj"] = _page(request, Post.objects.published().search(query))
    return render(request, "blog/search.html", context)


def robots_txt(request: HttpRequest) -> HttpResponse:
    """Crawlers may read everything public; not the admin, previews or search results."""
    base = settings.SITE_URL or f"{request.scheme}://{request.get_host()}"
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        f"Disallow: {reverse('blog:list')}preview/",
        f"Disallow: {reverse('blog:search')}",
        "",
        f"Sitemap: {base}{reverse('sitemap')}",
        "",
    ]
    return HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")


def media(request: HttpRequest, path: str) -> HttpResponse:
    """Uploaded files (cover images) from ``MEDIA_ROOT``, read at request time. Only staff
    upload, and only images Pillow accepts; behind a front proxy, serve MEDIA_ROOT there."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)
