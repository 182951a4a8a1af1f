"""Backbones: what each one is, how its input is adapted, how it is built and read, and its cache key.

Cheap to import (no torch): ``spec`` (the registry entry's data), ``family``
(how a family of models is driven), ``families/`` (one file per family),
``registry`` (all of them by name), ``adapt`` and ``channels`` (the input
plan), ``fingerprint`` (the embedding cache key), ``checkpoints`` (weights
files), ``corpora`` (pretraining-corpus overlap). Imports torch: ``build``
(models and extractors), ``features`` (feature read-out and pooling),
``projection`` (a trainable channel projection), ``weights_check`` (the
parse-time fit check, on the meta device).
"""
