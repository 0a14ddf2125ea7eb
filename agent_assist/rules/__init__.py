"""Prompt rules: packs of TOML rules a quality lead can read, change, lint and replay."""
