"""Uploads: receiving blobs on the filesystem backend, committing and aborting versions."""
