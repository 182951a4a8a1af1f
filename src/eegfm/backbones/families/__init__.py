"""One module per backbone family; the registry collects them all.

Each module here defines ``SPECS``, a tuple of
:class:`~eegfm.backbones.spec.BackboneSpec`: everything eegfm knows about the
models of that family — the input they take, how they are built and read
(their :mod:`family <eegfm.backbones.family>` object), their checkpoint key
map and construction-time files. :mod:`eegfm.backbones.registry` imports
every module of this package, so adding a model is adding one file (see
``docs/adding-a-backbone.md``). Modules here import no torch at module level.
"""
