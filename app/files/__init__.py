"""File downloads: HEAD/GET with ETag = sha256, Range on disk, presigned redirects on S3."""
