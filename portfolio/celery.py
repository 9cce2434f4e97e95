"""The Celery application, configured from Django settings (the ``CELERY_`` names).

Three queues by priority: ``high`` for interactive work a visitor is waiting on, ``default``,
and ``low`` for bulk work. The worker started by ``make run`` consumes all three in that order.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")

QUEUES = ("high", "default", "low")

app = Celery("portfolio")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One direct exchange per queue, keyed by its own name, so routing to "high" reaches only it.
app.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in QUEUES]
app.autodiscover_tasks()
