"""Websocket routes of the live demos."""

from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/demos/status/", consumers.StackStatusConsumer.as_asgi()),
    path("ws/demos/firewall/", consumers.FirewallConsumer.as_asgi()),
    path("ws/demos/scheduler/", consumers.SchedulerConsumer.as_asgi()),
]
