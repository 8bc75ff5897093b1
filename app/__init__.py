"""OpenZoo registry server: models, immutable versions and content-addressed blobs over a REST API."""
