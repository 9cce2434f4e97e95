"""Top-level URL configuration."""

from django.contrib import admin
from django.urls import include, path

from . import views

portfolio_patterns = (
    [
        path("", views.home, name="home"),
        path("projects/<slug:slug>/", views.project_detail, name="project"),
        path("arsenal/", views.arsenal, name="arsenal"),
        path("about/", views.about, name="about"),
    ],
    "portfolio",
)

urlpatterns = [
    path("", include(portfolio_patterns)),
    path("demos/", include("demos.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
