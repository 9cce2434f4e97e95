"""Every live demo the site knows, with the stack processes it needs.

One list, read by the demos index, the home page and the project pages, so a demo's name
and its link are written once. A demo whose page is not built yet has ``url_name=None`` and
shows as "coming".
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class Demo:
    """A live demo: where its page is and which processes must be up for it to work."""

    slug: str
    title: str
    summary: str
    processes: tuple[str, ...]
    url_name: str | None = None

    @property
    def available(self) -> bool:
        return self.url_name is not None

    def get_absolute_url(self) -> str | None:
        return reverse(self.url_name) if self.url_name else None


DEMOS: dict[str, Demo] = {
    demo.slug: demo
    for demo in [
        Demo(
            slug="status",
            title="Stack status",
            summary="Every process of this site — web, worker, Redis — pinged once a second "
            "over a websocket.",
            processes=("web", "worker", "redis"),
            url_name="demos:index",
        ),
        Demo(
            slug="firewall",
            title="SQL firewall and connection pooler",
            summary="Type SQL into a console; a real wire-protocol proxy blocks DROP, TRUNCATE "
            "and unqualified DELETE on their way to PostgreSQL.",
            processes=("web", "postgres", "firewall"),
            url_name="demos:firewall",
        ),
        Demo(
            slug="router",
            title="Conduit SQL router",
            summary="Statements parsed and routed across three PostgreSQL shards by "
            "consistent hashing.",
            processes=("web", "shards", "router"),
        ),
        Demo(
            slug="scheduler",
            title="Work-stealing job scheduler",
            summary="Chase-Lev deques in C: watch workers steal from each other live.",
            processes=("web",),
            url_name="demos:scheduler",
        ),
        Demo(
            slug="gc",
            title="Mark-and-sweep garbage collector",
            summary="A small VM's heap, marked from its roots and swept, drawn as it happens.",
            processes=("web",),
        ),
        Demo(
            slug="clips",
            title="Clip worker",
            summary="Celery workers on Redis trim video with FFmpeg, with live progress.",
            processes=("web", "worker", "redis"),
        ),
    ]
}
