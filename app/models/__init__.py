"""Models: create, read, search (with cursor pagination) and stub resolution."""
