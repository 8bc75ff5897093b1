"""Shared test configuration: the hub configurations every database/storage test runs on.

- ``sqlite-fs``: SQLite + filesystem storage (the embedded default), always.
- ``postgres-s3``: PostgreSQL + S3. PostgreSQL comes from ``ZOO_TEST_DATABASE_URL`` (a server
  URL; each test session creates and drops its own database); S3 from ``ZOO_TEST_S3_ENDPOINT``
  (CI: a real Swift s3api server) or, when unset, moto in server mode. Without
  ``ZOO_TEST_DATABASE_URL`` this configuration is skipped, with that reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["support.fixtures"]
