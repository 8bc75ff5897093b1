"""API tokens: creation (shown once), listing, revocation."""
