"""The installed distribution: one import name, `agent_assist`, with the overlay, the shipped models
and the rule packs mapped under it from their folders at the top of the repository."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

from agent_assist import resources

REPO = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
# the folders at the top of the repository installed under agent_assist (the design's layout)
MAPPED = {"agent_assist.ui": "ui", "agent_assist.classifiers": "classifiers",
          "agent_assist.prompts": "prompts"}


def test_every_package_folder_is_installed():
    listed = set(SETUPTOOLS["packages"])
    found = {p for p in find_packages(str(REPO), include=["agent_assist*"])}
    for name, folder in MAPPED.items():
        inside = find_packages(str(REPO), include=[folder, f"{folder}.*"])
        found |= {name + p.removeprefix(folder) for p in inside}
    assert listed == found
    assert SETUPTOOLS["package-dir"] == MAPPED


def test_every_data_file_in_a_mapped_folder_is_package_data():
    """A model or a region added to the folders goes into the wheel, or this fails."""
    for name in ("agent_assist.classifiers", "agent_assist.prompts"):
        folder = REPO / MAPPED[name]
        covered = {p for pattern in SETUPTOOLS["package-data"][name] for p in folder.glob(pattern)}
        files = {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                 and p.suffix != ".py"}
        assert files
        left_out = sorted(str(p.relative_to(folder)) for p in files - covered)
        assert not left_out, f"{name}: add these to [tool.setuptools.package-data]: {left_out}"


def test_the_overlay_imports_as_part_of_agent_assist():
    import agent_assist.ui.model

    assert Path(agent_assist.ui.model.__file__).resolve().parent == REPO / "ui"


def test_the_models_and_packs_are_found_through_the_package():
    """In a checkout (an editable install) the resources are the repository's own folders."""
    assert resources.models().resolve() == REPO / "classifiers"
    assert resources.default_pack().resolve() == REPO / "prompts" / "default.toml"
    assert resources.regions().resolve() == REPO / "prompts" / "regions"
    assert (resources.models() / "text.onnx").is_file() and (resources.regions() / "au.toml").is_file()
