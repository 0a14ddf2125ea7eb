"""The rule packs (data, not code): default.toml and the regions' support lines in regions/,
installed as `agent_assist.prompts` so a wheel carries them; `agent_assist.resources` finds them.

This file makes the folder a regular package: setuptools' editable install maps a folder without
one to nothing (`import agent_assist.prompts` fails), and a checkout could not find its packs.
"""
