"""The installed distribution: one import name, `agent_assist`, with the overlay mapped under it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

REPO = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_installed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {p for p in find_packages(str(REPO), include=["agent_assist*"])}
    found |= {"agent_assist.ui" + p.removeprefix("ui") for p in find_packages(str(REPO), include=["ui*"])}
    assert listed == found
    assert config["package-dir"] == {"agent_assist.ui": "ui"}


def test_the_overlay_imports_as_part_of_agent_assist():
    import agent_assist.ui.model

    assert Path(agent_assist.ui.model.__file__).resolve().parent == REPO / "ui"
