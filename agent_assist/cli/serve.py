"""`agent-assist serve`: the AudioHook server for a contact-centre platform (see `agent_assist.server`)."""

from __future__ import annotations

from pathlib import Path

import click

from agent_assist.cli.common import model_option, say
from agent_assist.config import load as load_config
from agent_assist.errors import AgentAssistError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0: every interface; behind a reverse proxy, keep "
                   "the default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="The port to listen on (0: any free port, printed at start).")
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Serve wss:// with this certificate chain (PEM); the platform needs one a public CA "
                   "signed.")
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="The certificate's private key (PEM).")
@model_option
@click.option("--rules", "site_packs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A site rule pack to layer on the default pack (repeatable, in order).")
@click.option("--store", "store_url", metavar="PATH|URL", default=None,
              help="The flag store (postgresql://… for a floor; 'none' for no store). Default: the "
                   "configuration's store.url, else flags.sqlite3 in the user's data directory.")
@click.option("--transcript", type=click.Choice(["none", "excerpt", "full"]), default=None,
              help="How much redacted transcript the store keeps (default: the configuration's, else "
                   "excerpt).")
def serve(host: str, port: int, tls_cert: Path | None, tls_key: Path | None, model: str | None,
          site_packs: tuple[Path, ...], store_url: str | None, transcript: str | None) -> None:
    """Serve Genesys Cloud AudioHook (Monitor) sessions: each call is transcribed, scored and
    prompted as `run` does, its flags go to the store, and each agent's overlay gets its calls'
    events over the network (`agent-assist overlay --server URL --agent ID`).

    API keys, client secrets and the agents' overlay tokens come from the configuration file's
    [serve] tables or the environment ($AGENT_ASSIST_AUDIOHOOK_KEYS, $AGENT_ASSIST_AGENT_TOKENS),
    never from the command line. README "Serving a contact centre" has the set-up.

    \b
    Examples:
      agent-assist serve --port 8080
      agent-assist serve --host 0.0.0.0 --port 443 --tls-cert cert.pem --tls-key key.pem
      agent-assist serve --store postgresql://agent-assist@db.internal/flags
    """
    from agent_assist.call import CallOptions
    from agent_assist.server import Listen, ServeOptions
    from agent_assist.server import serve as run
    from agent_assist.server.settings import load as load_settings
    from agent_assist.transcriber import TranscriberOptions

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    config = load_config()
    settings = load_settings(config.path, team=config.team)
    options = ServeOptions(
        listen=Listen(host, port, tls_cert, tls_key),
        call=CallOptions(site_packs=config.rule_packs(site_packs),
                         transcriber=TranscriberOptions(model=model)),
        store_url=store_url, transcript=transcript or config.transcript)
    try:
        run(options, settings, config, say=say)
    except OSError as exc:
        raise AgentAssistError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
