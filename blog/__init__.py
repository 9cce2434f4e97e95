"""The blog app: markdown posts, tags and series authored in the admin, and the pages, feeds
and sitemaps that publish them; its renderer (``blog.rendering``) serves the whole site."""
