"""Demo pages. Each page is static HTML; the live part arrives over its websocket."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .registry import DEMOS
from .status import PROCESS_LABELS


def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "demos/index.html",
        {"demos": list(DEMOS.values()), "process_labels": PROCESS_LABELS},
    )
