"""The real systems behind the live demos; each package works without Django."""
