"""OpenZoo client: resolve ``zoo:`` stubs, search, download and publish models, run them on CPU."""

__all__: list[str] = []
