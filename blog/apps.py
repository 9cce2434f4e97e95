"""App configuration for the blog."""

from django.apps import AppConfig


class BlogConfig(AppConfig):
    """Posts, tags and the markdown renderer the whole site shares."""

    name = "blog"
    verbose_name = "Blog"
