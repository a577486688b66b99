"""The repository's promises about itself: README commands, CI, table of contents."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    commands = _readme_commands()
    test_cmd = [c for c in commands if "pytest --nbval" in c]
    assert len(test_cmd) == 1, "README must show exactly one test command"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd[0].strip() in ci.splitlines()


def test_readme_build_command_is_strict():
    build = [c for c in _readme_commands() if "jupyter-book build" in c]
    assert len(build) == 1
    assert "-W" in build[0] and "pip install -r requirements.txt" in build[0]


def test_every_toc_entry_exists_and_every_chapter_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    for f in files:
        assert (ROOT / f"{f}.md").exists(), f"{f}.md is in _toc.yml but does not exist"
    notebooks = [p for p in (ROOT / "book").glob("*.md")
                 if "kernelspec:" in p.read_text(encoding="utf-8")[:2000]]
    listed = {ROOT / f"{f}.md" for f in files}
    missing = [p.name for p in notebooks if p not in listed]
    assert not missing, f"chapters missing from _toc.yml: {missing}"


def test_torch_is_pinned_for_the_cpu_install():
    req = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==\d+\.\d+\.\d+\s*$", req, flags=re.M)
