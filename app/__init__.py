"""OpenZoo registry server: models, immutable versions, content-addressed blobs, REST API."""
