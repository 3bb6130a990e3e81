"""The library's version, written into every model file's metadata."""

__version__ = "0.1.0"
