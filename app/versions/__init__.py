"""Versions: publishing (open, upload, commit, abort), reading, aliases and results."""
