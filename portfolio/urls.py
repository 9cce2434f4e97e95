"""Top-level URL configuration."""

from django.conf import settings
from django.contrib import admin
from django.contrib.sitemaps import GenericSitemap
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path, re_path

from blog import views as blog_views
from blog.sitemaps import PagesSitemap, PostSitemap, TagSitemap

from . import views
from .models import Project

portfolio_patterns = (
    [
        path("", views.home, name="home"),
        path("projects/<slug:slug>/", views.project_detail, name="project"),
        path("arsenal/", views.arsenal, name="arsenal"),
        path("about/", views.about, name="about"),
    ],
    "portfolio",
)

sitemaps = {
    "pages": PagesSitemap(
        ["portfolio:home", "portfolio:arsenal", "portfolio:about", "demos:index", "blog:list"]
    ),
    "projects": GenericSitemap(
        {"queryset": Project.objects.listed(), "date_field": "updated"}, priority=0.7
    ),
    "posts": PostSitemap,
    "tags": TagSitemap,
}

urlpatterns = [
    path("", include(portfolio_patterns)),
    path("blog/", include("blog.urls")),
    path("sitemap.xml", sitemap, {"sitemaps": sitemaps}, name="sitemap"),
    path("robots.txt", blog_views.robots_txt, name="robots"),
    path("demos/", include("demos.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]

# Uploaded media: blog cover images (see blog.views.media).
urlpatterns += [re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.*)$", blog_views.media)]
