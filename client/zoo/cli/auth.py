"""``zoo login`` and ``zoo logout``."""

from __future__ import annotations

from typing import Annotated

import typer

from zoo._config import ZooConfig, write_token_file
from zoo.cli._common import out


def login(
    token: Annotated[
        str | None, typer.Option("--token", help="The token (prompted for when not given)")
    ] = None,
) -> None:
    """Store an API token for later commands (file mode 0600; ZOO_TOKEN_PATH overrides)."""
    if token is None:
        token = typer.prompt("Token", hide_input=True)
    token = token.strip()
    if not token:
        raise typer.BadParameter("the token is empty", param_hint="--token")
    path = write_token_file(ZooConfig.from_env().token_path, token)
    out.print(f"token stored in {path}", highlight=False)


def logout() -> None:
    """Forget the stored token."""
    path = ZooConfig.from_env().token_path.expanduser()
    path.unlink(missing_ok=True)
    out.print(f"removed {path}", highlight=False)
