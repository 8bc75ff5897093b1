"""Test and benchmark helpers: offline model builders (no downloads)."""
