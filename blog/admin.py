"""The blog in the admin: posts with a live preview beside the editor, tags and series.

The preview renders the unsaved post through the site's own post template, so the author
sees exactly what readers will (static/js/blog-preview.js puts it in a frame).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.widgets import Script
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from .models import Post, Series, SlugRedirect, Tag
from .views import render_unsaved_preview


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "post_count")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="posts")
    def post_count(self, tag: Tag) -> int:
        return tag.posts.count()


class SeriesPostInline(admin.TabularInline):
    model = Post
    fields = ("series_order", "title", "status", "publish_at")
    readonly_fields = ("title", "status", "publish_at")
    extra = 0
    can_delete = False
    ordering = ("series_order",)
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ("title", "slug")
    search_fields = ("title", "description")
    prepopulated_fields = {"slug": ("title",)}
    inlines = [SeriesPostInline]


class SlugRedirectInline(admin.TabularInline):
    model = SlugRedirect
    fields = ("old_slug", "created")
    readonly_fields = ("created",)
    extra = 0
    verbose_name = "old address (answered with a permanent redirect)"
    verbose_name_plural = "old addresses (answered with permanent redirects)"


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "publish_at", "visibility", "series", "reading_time")
    list_filter = ("status", "publish_at", "tags", "series")
    search_fields = ("title", "slug", "summary", "body")
    date_hierarchy = "publish_at"
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("tags",)
    readonly_fields = ("reading_time", "preview_link", "created", "updated")
    inlines = [SlugRedirectInline]
    fieldsets = [
        (None, {"fields": ["title", "slug", "summary", "body"]}),
        (
            "Publishing",
            {"fields": ["status", "publish_at", "preview_link", "reading_time"]},
        ),
        ("Topics", {"fields": ["tags", ("series", "series_order")]}),
        ("Cover", {"fields": ["cover_image", "cover_alt"], "classes": ["collapse"]}),
        ("History", {"fields": ["created", "updated"], "classes": ["collapse"]}),
    ]

    @property
    def media(self) -> forms.Media:
        preview_url = reverse(f"{self.admin_site.name}:blog_post_live_preview")
        return super().media + forms.Media(
            js=[Script("js/blog-preview.js", **{"data-preview-url": preview_url, "defer": True})],
            css={"all": ["css/blog-admin.css"]},
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Post]:
        return super().get_queryset(request).select_related("series")

    @admin.display(description="visible to readers")
    def visibility(self, post: Post) -> str:
        if post.status == Post.Status.DRAFT:
            return "draft"
        return "live" if post.publish_at <= timezone.now() else "scheduled"

    @admin.display(description="preview")
    def preview_link(self, post: Post) -> str:
        if not post.pk:
            return "Save the post to get a preview address (the live preview works already)."
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a> (staff only, never indexed)',
            post.get_preview_url(),
            post.get_preview_url(),
        )

    def save_model(self, request: HttpRequest, obj: Post, form, change: bool) -> None:
        if obj.author_id is None:
            obj.author = request.user
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "live-preview/",
            self.admin_site.admin_view(self.live_preview),
            name="blog_post_live_preview",
        )
        return [preview, *super().get_urls()]

    def live_preview(self, request: HttpRequest) -> HttpResponse:
        """POST title/summary/body/tags: the post page as it would look, not saved."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            return HttpResponse(status=403)
        data = request.POST
        status = data.get("status")
        try:
            publish_at = forms.SplitDateTimeField(required=False).clean(
                [data.get("publish_at_0", ""), data.get("publish_at_1", "")]
            )
        except ValidationError:
            publish_at = None  # half-typed: preview as of now
        post = Post(
            title=data.get("title", ""),
            summary=data.get("summary", ""),
            body=data.get("body", ""),
            status=status if status in Post.Status.values else Post.Status.DRAFT,
            publish_at=publish_at or timezone.now(),
        )
        tag_ids = [value for value in data.getlist("tags") if value.isdigit()]
        tags = list(Tag.objects.filter(pk__in=tag_ids).order_by("name"))
        return render_unsaved_preview(request, post, tags)
