"""The portfolio's content: the owner's profile, projects with their key features, and the
technical arsenal of skills grouped into categories. All of it is edited in the admin."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from blog.rendering import render_markdown


class Profile(models.Model):
    """The site owner. The site shows the first profile; there is normally exactly one."""

    name = models.CharField(max_length=120)
    headline = models.CharField(max_length=200)
    bio = models.TextField(help_text="Markdown.")
    bio_html = models.TextField(editable=False, blank=True)
    location = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.bio_html = render_markdown(self.bio)
        super().save(*args, **kwargs)


class ProfileLink(models.Model):
    """A link on the profile (GitHub, LinkedIn, email, ...), in the order given."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="links")
    label = models.CharField(max_length=60)
    url = models.URLField()
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self) -> str:
        return self.label


class SkillCategory(models.Model):
    """A group of the technical arsenal (languages, databases, ...), the selector's options."""

    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.CharField(max_length=200, blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "name"]
        verbose_name_plural = "skill categories"

    def __str__(self) -> str:
        return self.name


class Skill(models.Model):
    """One entry of the technical arsenal."""

    name = models.CharField(max_length=80, unique=True)
    category = models.ForeignKey(SkillCategory, on_delete=models.PROTECT, related_name="skills")
    note = models.CharField(max_length=160, blank=True, help_text="What the owner did with it.")
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["category__order", "order", "name"]

    def __str__(self) -> str:
        return self.name


class ProjectQuerySet(models.QuerySet):
    def featured(self) -> ProjectQuerySet:
        return self.filter(status=Project.Status.FEATURED)

    def building(self) -> ProjectQuerySet:
        return self.filter(status=Project.Status.BUILDING)

    def listed(self) -> ProjectQuerySet:
        """Projects with a public page: everything not archived."""
        return self.exclude(status=Project.Status.ARCHIVED)


class Project(models.Model):
    """A project of the owner's, with its key features and, when it has one, a live demo."""

    class Status(models.TextChoices):
        FEATURED = "featured", "Featured"
        BUILDING = "building", "Currently building"
        ARCHIVED = "archived", "Archived"

    title = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    tagline = models.CharField(max_length=160, blank=True)
    summary = models.TextField(help_text="One paragraph, plain text: cards and meta tags.")
    body = models.TextField(blank=True, help_text="Markdown: the project page.")
    body_html = models.TextField(editable=False, blank=True)
    tech = models.ManyToManyField(Skill, blank=True, related_name="projects")
    repo_url = models.URLField(blank=True)
    demo_slug = models.SlugField(
        max_length=40, blank=True, help_text="The live demo's slug under /demos/, if any."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.FEATURED)
    order = models.PositiveSmallIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["order", "title"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        self.body_html = render_markdown(self.body)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("portfolio:project", kwargs={"slug": self.slug})


class KeyFeature(models.Model):
    """A key feature of a project, optionally with the figure that backs it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="features")
    text = models.CharField(max_length=300)
    metric = models.CharField(
        max_length=60, blank=True, help_text="A headline figure, e.g. '1M+ jobs/s'."
    )
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self) -> str:
        return self.text
