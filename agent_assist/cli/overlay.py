"""`agent-assist overlay`: the agent's overlay fed by a server (`agent-assist serve`) over the network."""

from __future__ import annotations

import click

from agent_assist.cli.common import say


@click.command()
@click.option("--server", required=True, metavar="URL",
              help="The serve address: wss://host[:port] (ws:// only on a trusted network).")
@click.option("--agent", required=True, metavar="ID",
              help="Your agent id, as the server's configuration names it.")
def overlay(server: str, agent: str) -> None:
    """Show the agent's overlay for calls the server hears (no audio is captured on this machine).

    The token comes from $AGENT_ASSIST_AGENT_TOKEN or the configuration's [overlay] token, never
    the command line. The light `agent-assist-overlay` command does the same without the rest.

    \b
    Examples:
      agent-assist overlay --server wss://assist.example.com --agent sam.k
    """
    from agent_assist.feed_client import run_overlay

    run_overlay(server, agent, say=say)
