"""The shipped classifiers (data, not code), installed as `agent_assist.classifiers` so a wheel
carries them; `agent_assist.resources` finds them. What they are: CARD.md.

This file makes the folder a regular package: setuptools' editable install maps a folder without
one to nothing (`import agent_assist.classifiers` fails), and a checkout could not find its models.
"""
