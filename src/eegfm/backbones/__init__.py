"""Backbones: the registry (cheap to import) and model building (imports torch)."""
