"""The SparseZoo-compatible API: ``POST /v2/graphql`` answers the ``sparsezoo`` client's
``models(...)`` queries from OpenZoo's models, so code full of ``zoo:`` stubs works again."""
