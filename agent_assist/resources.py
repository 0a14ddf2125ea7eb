"""The files that ship inside the package: the classifiers, the default rule pack, the regions'
support lines. Everything that reads them asks here.

They sit at the top of the repository (`classifiers/`, `prompts/`), as the design's layout has
them, and pyproject.toml installs them as `agent_assist.classifiers` and `agent_assist.prompts`
(as it installs `ui/` as `agent_assist.ui`). `importlib.resources` finds them wherever the package
is: a wheel in site-packages, or an editable install of a checkout. Nothing walks up from a
module's own file to a checkout, which an installed wheel does not have.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from agent_assist.errors import AgentAssistError


@cache
def _folder(package: str) -> Path:
    try:
        root = files(package)
    except ModuleNotFoundError:
        # an editable install made before the models and packs were packaged maps no such name
        raise AgentAssistError(f"{package} is not installed with agent_assist; reinstall it "
                               "(pip install -e . in a checkout, as make does)") from None
    if not isinstance(root, Path):
        # onnxruntime and the TOML readers take file paths, which a zipped install does not have
        raise AgentAssistError(f"{package} is inside an archive ({root}); install agent-assist unzipped")
    return root


def models() -> Path:
    """The folder of the shipped classifiers: text.onnx, acoustic.onnx, tokenizer.json, manifest.json."""
    return _folder("agent_assist.classifiers")


def default_pack() -> Path:
    """The trauma-informed default rule pack, under every site's packs."""
    return _folder("agent_assist.prompts") / "default.toml"


def site_example() -> Path:
    """The commented example site pack (`rules init` copies it): an override, a threshold, a crisis
    rule's support line, a rule of the site's own."""
    return _folder("agent_assist.prompts") / "site-example.toml"


def regions() -> Path:
    """The folder of the regions' support lines, one `<region>.toml` each."""
    return _folder("agent_assist.prompts") / "regions"
