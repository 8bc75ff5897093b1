"""Server commands (``zoo serve``, ``zoo admin ...``); needs the ``server`` extra."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import Annotated

import typer
import uvicorn

from app import gc, migrate, seed
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.storage_factory import make_storage
from app.tokens.service import create_token, revoke_token

admin_app = typer.Typer(
    help="Administer the hub: tokens, migrations, garbage collection.", no_args_is_help=True
)
log = logging.getLogger("app")


def _mint(
    settings: Settings,
    name: str,
    scopes: list[str],
    namespaces: list[str] | None,
    expires_in_days: float | None,
) -> tuple[int, str]:
    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine)() as session:
            token, secret = create_token(
                session,
                name=name,
                scopes=scopes,
                namespaces=namespaces,
                expires_in_days=expires_in_days,
            )
            session.commit()
            return token.id, secret
    finally:
        engine.dispose()


def _revoke(settings: Settings, token_id: int) -> None:
    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine)() as session:
            revoke_token(session, token_id)
            session.commit()
    finally:
        engine.dispose()


def _demo_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sklearn"))


def _publish_demo(settings: Settings, base_url: str) -> None:
    # A short-lived admin token publishes through the public API, then is revoked.
    token_id, secret = _mint(
        settings, f"demo-{datetime.now(UTC):%Y%m%dT%H%M%S}", ["admin"], None, 1 / 24
    )
    try:
        seed.wait_ready(base_url)
        seed.seed(base_url, secret)
        if not _demo_available():
            log.warning("demo catalog skipped: install the demo extra (pip install -e '.[demo]')")
            return
        # The catalog is trained and benchmarked in a process of its own, so the build's CPU
        # work never holds this server's interpreter; built folders are cached in data_dir.
        env = {
            **os.environ,
            "ZOO_ENDPOINT": base_url,
            "ZOO_TOKEN": secret,
            "ZOO_DEMO_DIR": str((settings.data_dir / "demo-build").resolve()),
        }
        log.info("building the demo catalog (first time: several minutes; cached after)")
        done = subprocess.run([sys.executable, "-m", "zoo", "demo", "build"], env=env, check=False)
        if done.returncode != 0:
            log.error(
                "the demo catalog build failed (exit %d); the hub keeps running", done.returncode
            )
    except Exception:
        log.exception("publishing the demo models failed; the hub keeps running")
    finally:
        _revoke(settings, token_id)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default ZOO_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ZOO_PORT or 8000).")] = None,
    demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Publish the seed model if it is missing.")
    ] = False,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Run migrations, then serve the hub with uvicorn."""
    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    migrate.upgrade(settings)
    if demo:
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        # The demo hub checks every published version's sample outputs with the runtime.
        os.environ.setdefault("ZOO_VERIFY_OUTPUTS", "1")
        threading.Thread(target=_publish_demo, args=(settings, url), daemon=True).start()
    typer.echo(f"OpenZoo on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=settings.log_level,
        workers=workers,
    )


@admin_app.command("create-token")
def create_token_command(
    name: Annotated[str, typer.Option(help="A label for the token.")] = "admin",
    scope: Annotated[
        list[str] | None, typer.Option(help="read, write or admin (repeatable; default admin).")
    ] = None,
    namespace: Annotated[
        list[str] | None, typer.Option(help="Limit to a namespace (repeatable).")
    ] = None,
    expires_days: Annotated[float | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create a token (the first admin token, typically) and print its secret once."""
    settings = Settings()
    migrate.upgrade(settings)
    _, secret = _mint(settings, name, scope or ["admin"], namespace or None, expires_days)
    typer.echo(secret)


@admin_app.command("gc")
def gc_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, delete nothing.")] = False,
    ttl_hours: Annotated[
        float | None,
        typer.Option(help="Abort uploads pending longer (default ZOO_UPLOAD_TTL_HOURS)."),
    ] = None,
) -> None:
    """Abort abandoned uploads and delete staged leftovers (safe to run any time, e.g. cron)."""
    settings = Settings()
    engine = make_engine(settings)
    try:
        report = gc.collect(
            make_sessionmaker(engine),
            make_storage(settings),
            ttl_hours=ttl_hours if ttl_hours is not None else settings.upload_ttl_hours,
            dry_run=dry_run,
        )
    finally:
        engine.dispose()
    typer.echo(("would have: " if dry_run else "") + report.summary())


@admin_app.command("migrate")
def migrate_command(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the database schema (``zoo serve`` does this too)."""
    migrate.upgrade(Settings(), revision)
    typer.echo(f"database at {revision}")
