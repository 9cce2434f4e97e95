"""URLs of the demo pages."""

from django.urls import path

from . import views

app_name = "demos"
urlpatterns = [
    path("", views.index, name="index"),
    path("firewall/", views.firewall, name="firewall"),
    path("scheduler/", views.scheduler, name="scheduler"),
]
