"""Test support shared by the suites (live servers, publishing helpers)."""
