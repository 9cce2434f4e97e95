"""Static files storage: WhiteNoise's compressed, hashed files, with JS module imports rewritten.

Django leaves ``import … from "./demo-socket.js"`` alone unless asked, so a browser holding a
cached module graph could mix an old dependency with a new page script after a deploy.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names for ES module imports too."""

    support_js_module_import_aggregation = True
