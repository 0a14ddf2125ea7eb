"""The quality team's tools: recorded calls run through the rules (`calls`: a timeline, a summary, a
comparison of two packs) and judged against labelled moments (`evaluate`).

They sit beside the other entry points (replay, live), above the rules and the pipeline they drive,
so nothing under `agent_assist.rules` reaches back up to run a call.
"""
