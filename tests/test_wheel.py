"""The built wheel, installed where no checkout is: it carries its models and packs, and scores
text and replays a call with nothing fetched (the default speech model is built once from its
pinned package, saying so).

The wheel is built from a copy of the package's sources (so the checkout gets no build/ folder),
offline (`--no-build-isolation --no-index`), and installed into a fresh venv outside the checkout.
That venv reaches the dependencies through a .pth file naming the running interpreter's
site-packages. A .pth line adds a folder to sys.path without reading that folder's own .pth files,
so the checkout's editable install stays inactive and the wheel's copy of agent_assist is the one
imported: the first test asserts that. Every command runs from a folder outside the checkout, with
an empty user cache, configuration and data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_assist import __version__
from tests.conftest import REPO, SPEECH, normalise

# the system layer (tests/layers.py: it builds and runs the real program in processes of its own)

CLIP = SPEECH / "1089-134691-0001.flac"  # 5 s: "for a full hour he had paced up and down waiting ..."
TIMEOUT = 120


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    cwd: Path  # outside the checkout
    env: dict[str, str]

    @property
    def cache_of_agent_assist(self) -> Path:
        """Where training would put the encoder it starts from (scoring/base.py): a call needs none."""
        return Path(self.env["XDG_CACHE_HOME"]) / "agent-assist"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=TIMEOUT)


def _sources(into: Path) -> None:
    """The files the build reads: pyproject.toml, the README (the long description) and the folders
    pyproject.toml maps into the package."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    folders = {"agent_assist", *project["tool"]["setuptools"]["package-dir"].values()}
    for name in ("pyproject.toml", project["project"]["readme"]):
        shutil.copy(REPO / name, into / name)
    for folder in folders:
        shutil.copytree(REPO / folder, into / folder, ignore=shutil.ignore_patterns("__pycache__"))


def _dependencies() -> list[str]:
    """The running interpreter's package folders (its venv's, and any its own .pth files add)."""
    return [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO.resolve())
    src, dist, venv, cwd = root / "src", root / "dist", root / "venv", root / "work"
    src.mkdir()
    cwd.mkdir()
    _sources(src)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env |= {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONUNBUFFERED": "1",
            "AGENT_ASSIST_CONFIG": str(root / "no-config.toml"), "XDG_CONFIG_HOME": str(root / "config"),
            "XDG_CACHE_HOME": str(root / "cache"), "XDG_DATA_HOME": str(root / "data")}

    def run(*cmd: str | Path) -> None:
        done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
        assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}"

    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
        "--wheel-dir", dist, src)
    (wheel,) = dist.glob("agent_assist-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "dependencies.pth").write_text("\n".join(_dependencies()) + "\n", encoding="utf-8")
    # pip itself comes through the .pth; --ignore-installed: the checkout's editable agent-assist
    # is another environment's, left alone
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
        "--ignore-installed", f"{wheel}[full]")
    return Installed(wheel, venv, cwd, env)


def _closure(requirements: list[str]) -> set[str]:
    """The distributions `requirements` need (markers evaluated, no extras), with everything they
    need in turn, as installed here."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wanted = [Requirement(r) for r in requirements]
    seen: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        wanted += [Requirement(r) for r in distribution(name).requires or ()]
    return seen


@pytest.fixture(scope="module")
def light(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The same wheel installed WITHOUT extras, as on an agent's desktop: a fresh venv that reaches
    only the distributions its own requirements name (and theirs), linked from this environment's
    site-packages into a folder of their own. Nothing is fetched."""
    from importlib.metadata import distribution

    root = tmp_path_factory.mktemp("light")
    venv, deps = root / "venv", root / "deps"
    deps.mkdir()
    with zipfile.ZipFile(installed.wheel) as whl:
        (metadata,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        lines = whl.read(metadata).decode().splitlines()
    requires = [line.split(": ", 1)[1] for line in lines if line.startswith("Requires-Dist: ")]
    names = _closure(requires)
    assert {"pyqt6", "websockets", "click", "platformdirs", "numpy"} <= names
    for name in names:
        dist = distribution(name)
        for top in {Path(str(f)).parts[0] for f in dist.files or ()} - {".."}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (deps / top).exists():
                (deps / top).symlink_to(source)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=TIMEOUT)
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "light.pth").write_text(f"{deps}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                           "--quiet", "--no-deps", "--no-index", str(installed.wheel)],
                          cwd=installed.cwd, env=installed.env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    return Installed(installed.wheel, venv, installed.cwd, installed.env)


def test_the_light_install_has_what_its_requirements_name_and_no_model_or_audio(light):
    code = textwrap.dedent("""
        import importlib.metadata as m, importlib.util as u, re
        for requirement in m.requires("agent-assist"):
            if "extra ==" not in requirement:  # each of the light install's requirements is here
                m.distribution(re.split(r"[<>=!~;\\[ ]", requirement)[0])
        heavy = ("faster_whisper", "onnxruntime", "av", "sounddevice", "pulsectl", "psycopg", "starlette",
                 "tokenizers", "torch")
        print(sorted(name for name in heavy if u.find_spec(name)))
    """)
    done = light.run("python", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_light_install_runs_the_network_overlay_and_names_the_full_install_elsewhere(light):
    helped = light.run("agent-assist-overlay", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--server" in helped.stdout and "--agent" in helped.stdout
    code = "import agent_assist, agent_assist.feed_client, agent_assist.ui.app, agent_assist.ui.overlay"
    imported = light.run("python", "-c", f"{code}; print(agent_assist.__file__)")
    assert imported.returncode == 0, imported.stderr
    assert Path(imported.stdout.strip()).is_relative_to(light.venv)
    for args, command in ((("replay", "x.wav"), "replay"), (("-v", "serve", "--port", "0"), "serve"),
                          (("devices",), "devices"), (("replay", "--help"), "replay")):
        done = light.run("agent-assist", *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        (line,) = done.stderr.splitlines()  # one line, no traceback
        assert line.startswith(f'agent-assist: error: "agent-assist {command}" needs the full install (')
        assert line.endswith(': pip install "agent-assist[full]"'), line
    assert "needs the full install" in light.run("agent-assist", "--help").stdout


def test_each_module_the_full_extra_brings_is_named_for_its_one_line():
    """The CLI's table of what each extra brings covers every distribution of `full` and `train`."""
    from importlib.metadata import packages_distributions

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from agent_assist.cli import EXTRA_OF_MODULE

    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]
    modules_of: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            modules_of.setdefault(canonicalize_name(dist), set()).add(module)
    for extra in ("full", "train"):
        for text in extras[extra]:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            if name == "agent-assist" or (requirement.marker and not requirement.marker.evaluate()):
                continue
            modules = {m for m in modules_of.get(name, ()) if not m.startswith("_")}
            assert modules & {m for m, e in EXTRA_OF_MODULE.items() if e == extra}, (extra, name, modules)


def test_the_wheel_carries_the_models_packs_and_regions(installed):
    with zipfile.ZipFile(installed.wheel) as whl:
        sizes = {info.filename: info.file_size for info in whl.infolist()}
    for name in ("classifiers/text.onnx", "classifiers/acoustic.onnx", "classifiers/tokenizer.json",
                 "classifiers/manifest.json", "prompts/default.toml", "prompts/regions/au.toml",
                 "ui/overlay.py"):
        assert f"agent_assist/{name}" in sizes, name
    for folder in ("classifiers", "prompts"):  # every file of the folders, whole
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                name = f"agent_assist/{path.relative_to(REPO).as_posix()}"
                assert sizes.get(name) == path.stat().st_size, name
    assert {name.split("/")[0] for name in sizes} == {"agent_assist", f"agent_assist-{__version__}.dist-info"}


def test_the_installed_package_is_the_wheels_not_the_checkouts(installed):
    code = "import agent_assist, agent_assist.resources as r; print(agent_assist.__file__); print(r.models())"
    done = installed.run("python", "-c", code)
    assert done.returncode == 0, done.stderr
    package, models = (Path(line) for line in done.stdout.split())
    assert package.is_relative_to(installed.venv) and models.is_relative_to(installed.venv)
    assert not installed.cwd.resolve().is_relative_to(REPO.resolve())


def test_an_installed_wheel_scores_text(installed):
    says = installed.cwd / "says.txt"
    says.write_text("I want to speak to a manager right now\nmy husband passed away and I can't cope\n"
                    "can I check my balance\n", encoding="utf-8")
    done = installed.run("agent-assist", "classifiers", "score", says.name)
    assert done.returncode == 0, done.stderr
    header, *rows = [line.split(",") for line in done.stdout.split()]
    assert header == ["distress", "escalation", "crisis", "kind"] and len(rows) == 3
    manager, bereaved, balance = ([float(v) for v in row[:3]] for row in rows)
    assert manager[1] > 0.5 and bereaved[0] > 0.5 and max(balance) < 0.35
    assert not installed.cache_of_agent_assist.exists(), "nothing is built or fetched to score"


def test_an_installed_wheel_replays_a_call_with_its_rules(installed):
    """The default speech model (Moonshine base-en) is built from its pinned package the first time,
    into the (empty) user cache, with one line that says so, and read from there the second time."""
    first = installed.run("agent-assist", "replay", str(CLIP), "--no-partials", "-q", "--events", "-")
    assert first.returncode == 0, first.stderr
    built = installed.cache_of_agent_assist / "moonshine-base-en"
    assert first.stderr.splitlines() == [
        f"building Moonshine base-en from moonshine-cpp==0.1.4 once (about 15 s, into {built})"]
    assert (built / "built.json").is_file()
    done = installed.run("agent-assist", "replay", str(CLIP), "--no-partials", "-q", "--events", "-")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["type"] for e in events] == ["call_start", "utterance", "call_end"]
    assert events[0]["model"] == "moonshine-base-en"
    assert json.loads(first.stdout.splitlines()[1])["text"] == events[1]["text"]  # the same model
    utterance = events[1]
    assert "he could wait no longer" in normalise(utterance["text"])
    assert set(utterance["scores"]) >= {"distress", "escalation", "crisis", "kind"}
    assert all(0 <= utterance["scores"][s] <= 1 for s in ("distress", "escalation", "crisis"))
    assert events[2]["reason"] == "end_of_audio" and events[2]["error"] is None
    # the default pack and the region's support lines, read from the installed package
    lint = installed.run("agent-assist", "rules", "lint")
    assert lint.returncode == 0, lint.stderr
    assert lint.stderr.startswith("2 file(s), ") and " 0 error(s)" in lint.stderr
    assert sorted(p.name for p in installed.cache_of_agent_assist.iterdir()) == [
        ".moonshine-base-en.lock", "moonshine-base-en"], "nothing but the speech model is built to replay"
