"""The blog's URLs under /blog/. Fixed pages come before the post slug; post slugs that
would collide with them are refused by ``Post.clean``."""

from django.urls import path

from . import feeds, views

app_name = "blog"

urlpatterns = [
    path("", views.post_list, name="list"),
    path("feed/", feeds.LatestPostsAtom(), name="feed"),
    path("feed/rss/", feeds.LatestPostsRss(), name="feed_rss"),
    path("search/", views.search, name="search"),
    path("archive/", views.archive, name="archive"),
    path("archive/<int:year>/", views.archive_year, name="archive_year"),
    path("tags/", views.tag_list, name="tags"),
    path("tag/<slug:slug>/", views.tag_detail, name="tag"),
    path("tag/<slug:slug>/feed/", feeds.TagPostsAtom(), name="tag_feed"),
    path("tag/<slug:slug>/feed/rss/", feeds.TagPostsRss(), name="tag_feed_rss"),
    path("preview/<int:pk>/", views.post_preview, name="preview"),
    path("<slug:slug>/", views.post_detail, name="post"),
]
