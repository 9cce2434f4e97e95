"""The Django project package and the portfolio app: profile, projects, technical arsenal."""

from .celery import app as celery_app

__all__ = ("celery_app",)
