"""Posts, tags and series: the blog's content, authored in the admin.

What the public sees is decided by one queryset, :meth:`PostQuerySet.published`: a post is
public when its status is *published* and its publication date has passed, so a post dated
in the future is scheduled without any cron job (the habit of djangoproject.com's weblog).
Markdown is rendered to sanitized HTML once, on save.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from .rendering import reading_time, render_document

# Post slugs share /blog/<slug>/ with the blog's own pages.
RESERVED_SLUGS = {"archive", "feed", "preview", "rss", "search", "tag", "tags", "page"}


class Tag(models.Model):
    """A topic. A tag whose slug is a project's slug links its posts from that project's page."""

    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True, help_text="Plain text, shown on the tag page.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("blog:tag", kwargs={"slug": self.slug})


class Series(models.Model):
    """Posts meant to be read in order; each post names its place with ``series_order``."""

    title = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return self.title


class PostQuerySet(models.QuerySet):
    def published(self) -> PostQuerySet:
        """Public posts: status published and a publication date that has passed."""
        return self.filter(status=Post.Status.PUBLISHED, publish_at__lte=timezone.now())

    def search(self, query: str) -> PostQuerySet:
        """Posts matching ``query``, best first.

        On PostgreSQL: full-text search over a vector weighting the title (A) over the tags
        (B) over the body (C), ranked by ``ts_rank``. Elsewhere (SQLite): every word of the
        query must appear in the title, summary, body or a tag name, newest first.
        """
        query = query.strip()
        if not query:
            return self.none()
        if connection.vendor == "postgresql":
            from django.contrib.postgres.aggregates import StringAgg
            from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

            vector = (
                SearchVector("title", weight="A", config="english")
                + SearchVector(
                    StringAgg("tags__name", delimiter=" ", default=""), weight="B", config="english"
                )
                + SearchVector("summary", "body", weight="C", config="english")
            )
            search_query = SearchQuery(query, search_type="websearch", config="english")
            return (
                self.annotate(document=vector)
                .filter(document=search_query)
                .annotate(rank=SearchRank(vector, search_query))
                .order_by("-rank", "-publish_at")
            )
        matches = self
        for word in query.split():
            matches = matches.filter(
                Q(title__icontains=word)
                | Q(summary__icontains=word)
                | Q(body__icontains=word)
                | Q(tags__name__icontains=word)
            )
        return self.filter(pk__in=matches.values("pk")).order_by("-publish_at")


class Post(models.Model):
    """A blog post: markdown in, sanitized HTML and a table of contents out, once on save."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    summary = models.TextField(
        help_text="One or two sentences, plain text: post lists, feeds and meta tags."
    )
    body = models.TextField(help_text="Markdown.")
    body_html = models.TextField(editable=False, blank=True)
    toc_html = models.TextField(editable=False, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="posts")
    series = models.ForeignKey(
        Series, null=True, blank=True, on_delete=models.SET_NULL, related_name="posts"
    )
    series_order = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Place in the series, from 1."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    publish_at = models.DateTimeField(
        "publication date",
        default=timezone.now,
        db_index=True,
        help_text="A date in the future schedules the post: it appears by itself then.",
    )
    cover_image = models.ImageField(
        upload_to="blog/covers/%Y/",
        blank=True,
        width_field="cover_width",
        height_field="cover_height",
    )
    cover_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    cover_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    cover_alt = models.CharField(
        "cover alt text",
        max_length=200,
        blank=True,
        help_text="What the cover image shows, for readers who cannot see it. Required with "
        "an image.",
    )
    reading_time = models.PositiveSmallIntegerField(
        "reading time (minutes)", default=1, editable=False
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["-publish_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cover_image="") | ~Q(cover_alt=""),
                name="blog_post_cover_has_alt",
                violation_error_message="A cover image needs its alt text.",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        self.render()
        with transaction.atomic():
            if self.pk is not None:
                old = Post.objects.filter(pk=self.pk).values("slug", "status").first()
                if old and old["slug"] != self.slug and old["status"] == self.Status.PUBLISHED:
                    # Links to the old address keep working: /blog/<old>/ answers 301.
                    SlugRedirect.objects.update_or_create(
                        old_slug=old["slug"], defaults={"post_id": self.pk}
                    )
            super().save(*args, **kwargs)
            SlugRedirect.objects.filter(old_slug=self.slug).delete()

    def get_absolute_url(self) -> str:
        return reverse("blog:post", kwargs={"slug": self.slug})

    def get_preview_url(self) -> str:
        return reverse("blog:preview", kwargs={"pk": self.pk})

    @property
    def is_live(self) -> bool:
        """Public right now (the same test as :meth:`PostQuerySet.published`)."""
        return self.status == self.Status.PUBLISHED and self.publish_at <= timezone.now()

    def clean(self) -> None:
        super().clean()
        if self.slug in RESERVED_SLUGS:
            raise ValidationError({"slug": f"“{self.slug}” is the address of a blog page."})
        if self.cover_image and not self.cover_alt.strip():
            raise ValidationError({"cover_alt": "Describe the cover image for screen readers."})
        if self.series_id and self.series_order is None:
            raise ValidationError({"series_order": "Give the post's place in its series."})

    def render(self) -> None:
        """Fill the derived fields from the markdown body."""
        rendered = render_document(self.body)
        self.body_html = rendered.html
        self.toc_html = rendered.toc_html
        self.reading_time = reading_time(self.body)

    def related(self, limit: int = 3) -> PostQuerySet:
        """Other public posts sharing the most tags with this one, newest first on ties."""
        return (
            Post.objects.published()
            .filter(tags__in=self.tags.all())
            .exclude(pk=self.pk)
            .annotate(shared=Count("tags"))
            .order_by("-shared", "-publish_at")[:limit]
        )

    def series_posts(self) -> PostQuerySet:
        if self.series_id is None:
            return Post.objects.none()
        return Post.objects.published().filter(series_id=self.series_id).order_by("series_order")


class SlugRedirect(models.Model):
    """An old address of a published post; requests for it are answered with a 301."""

    old_slug = models.SlugField(max_length=200, unique=True)
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="old_slugs")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.old_slug} → {self.post.slug}"
