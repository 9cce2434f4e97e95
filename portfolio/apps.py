"""App configuration for the portfolio app."""

from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    """The owner's profile, projects and technical arsenal."""

    name = "portfolio"
    verbose_name = "Portfolio"
