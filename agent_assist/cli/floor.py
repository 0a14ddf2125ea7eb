"""`floor`: the supervisors' live page (and `floor hash-password` for its accounts)."""

from __future__ import annotations

import click

from agent_assist.cli.common import say
from agent_assist.config import load as load_config


@click.group(invoke_without_command=True)
@click.option("--store", "store_url", metavar="URL", default=None,
              help="The shared store: postgresql://… (default: the configuration's store.url, else the "
                   "user's own SQLite store).")
@click.option("--host", default=None, help="Address to listen on (default: the configuration's "
              "floor.bind, else 127.0.0.1: this machine only).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default: floor.port, else 8765).")
@click.pass_context
def floor(ctx: click.Context, store_url: str | None, host: str | None, port: int | None) -> None:
    """Serve the supervisors' live floor: every call under way with the customer's distress and
    escalation, crisis and high flags at the top within seconds, "I've got this", a note to the
    agent's overlay, a wallboard (/wall) and each call's review.

    Supervisors sign in with accounts from the configuration file ([floor.accounts.NAME], made with
    `agent-assist floor hash-password`), or through a reverse proxy's user header (floor.user_header).

    \b
    Examples:
      agent-assist floor --store postgresql://floor@db.example.internal/flags
      agent-assist floor hash-password
      agent-assist floor --store flags.sqlite3 --port 9000
    """
    if ctx.invoked_subcommand is not None:
        return
    from agent_assist.floor.app import Floor, serve
    from agent_assist.floor.settings import load as load_settings

    config = load_config()
    settings = load_settings()
    if not settings.accounts and not settings.user_header:
        say("note: no accounts in [floor.accounts] and no floor.user_header: nobody can sign in "
            "(`agent-assist floor hash-password` makes an account's hash)")
    target = store_url or config.store_url
    bind, listen = host or settings.bind, port or settings.port
    board = Floor(target, settings, config.store_timeout_s)
    say(f"agent-assist floor: http://{bind}:{listen}/ (store {board.store.where}; Ctrl-C stops)")
    serve(board, bind, listen)


@floor.command("hash-password")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def hash_password(password_stdin: bool) -> None:
    """Print the Argon2id hash of a password, for [floor.accounts.NAME] password_hash.

    \b
    Examples:
      agent-assist floor hash-password
      printf '%s' "$PASSWORD" | agent-assist floor hash-password --password-stdin
    """
    from agent_assist.floor.auth import hash_password as make_hash

    if password_stdin:
        import sys

        password = sys.stdin.read().rstrip("\n")
    else:
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    if not password:
        raise click.UsageError("an empty password")
    click.echo(make_hash(password))
