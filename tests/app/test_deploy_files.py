"""docker-compose.yml and the Dockerfile must match the real settings and entry points."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_app_environment_names_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["app"]["environment"]
    fields = {f"ZOO_{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(set(env) - fields)
    assert not unknown, f"docker-compose.yml sets variables Settings does not read: {unknown}"
    settings = Settings(**{k.removeprefix("ZOO_").lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    assert settings.storage == "s3"
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    bucket = settings.s3_bucket
    create = " ".join(compose["services"]["createbucket"]["entrypoint"].split())
    assert f"local/{bucket}" in create, "the compose file must create the bucket the app uses"


def test_dockerfile_runs_zoo_serve_with_the_server_extra() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "'.[server]'" in text
    assert 'CMD ["zoo", "serve"]' in text
    for path in ("app", "client", "migrations", "alembic.ini", "pyproject.toml"):
        assert path in text, f"the image needs {path}"
