"""`python -m agent_assist.cli`, the same as the `agent-assist` command."""

from agent_assist.cli import main

main()
