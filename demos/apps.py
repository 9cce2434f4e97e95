"""App configuration for the live demos."""

from django.apps import AppConfig


class DemosConfig(AppConfig):
    """Pages, websocket consumers and Celery tasks that drive the engines live."""

    name = "demos"
    verbose_name = "Live demos"
