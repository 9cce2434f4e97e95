"""Template context every page needs: the owner's profile and the canonical URL."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from .models import Profile


def site(request: HttpRequest) -> dict:
    base = settings.SITE_URL or f"{request.scheme}://{request.get_host()}"
    return {
        "profile": Profile.objects.prefetch_related("links").first(),
        "site_url": base,
        "canonical_url": base + request.path,
    }
