"""Pages of the portfolio: home, project pages, the technical arsenal, about, health."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache

from blog.models import Post
from demos.registry import DEMOS

from .models import Project, Skill, SkillCategory


def _projects_with_features():
    return Project.objects.prefetch_related("features", "tech")


def _arsenal():
    return SkillCategory.objects.prefetch_related(
        Prefetch("skills", queryset=Skill.objects.order_by("order", "name"))
    )


def home(request: HttpRequest) -> HttpResponse:
    projects = _projects_with_features()
    return render(
        request,
        "portfolio/home.html",
        {
            "featured": projects.featured(),
            "building": projects.building(),
            "categories": _arsenal(),
            "demos": list(DEMOS.values()),
            "latest_posts": Post.objects.published().prefetch_related("tags")[:3],
        },
    )


def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(_projects_with_features().listed(), slug=slug)
    return render(
        request,
        "portfolio/project_detail.html",
        {
            "project": project,
            "demo": DEMOS.get(project.demo_slug),
            # Posts tagged with the project's slug are the project's posts.
            "project_posts": Post.objects.published()
            .filter(tags__slug=project.slug)
            .prefetch_related("tags"),
        },
    )


def arsenal(request: HttpRequest) -> HttpResponse:
    """The arsenal with a category selector: ``?category=<slug>`` filters without JavaScript;
    the page's script does the same in place. An unknown category shows everything with a notice."""
    categories = list(_arsenal())
    requested = request.GET.get("category", "")
    selected = next((c for c in categories if c.slug == requested), None)
    return render(
        request,
        "portfolio/arsenal.html",
        {
            "categories": categories,
            "selected": selected,
            "unknown_category": requested if requested and selected is None else "",
        },
    )


def about(request: HttpRequest) -> HttpResponse:
    return render(request, "portfolio/about.html", {"categories": _arsenal()})


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness of the web process; the stack status panel times a GET of this URL."""
    return JsonResponse({"status": "ok"})
