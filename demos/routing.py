"""Websocket routes of the live demos."""

from django.urls import path

websocket_urlpatterns: list = []
