"""The blog app: markdown posts authored in the admin (see issue 5); for now, the renderer."""
