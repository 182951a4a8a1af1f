"""eegfm's version (one place; the package, provenance records and cache keys read it here)."""

__version__ = "0.1.0"
