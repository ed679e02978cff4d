"""The repository stands alone: every `*.md` file that code, tests or docs cite is in the repository.

A reference counts as present when the path exists relative to the repository root or to the citing
file's folder. Every tracked text file is read; only generated snapshots (tests/tui/__snapshots__)
are left out.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MD_REFERENCE = re.compile(r"(?<![\w./-])([\w./-]*\w\.md)\b")
GENERATED = ("tests/tui/__snapshots__/",)


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [p for p in out.stdout.split("\0") if p and not p.startswith(GENERATED)]


def missing_references(root: Path, files: list[str]) -> list[str]:
    """'path:line: reference' for each *.md reference in files (relative to root) that names no file there."""
    missing = []
    for rel in files:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted in the working tree
        for lineno, line in enumerate(text.splitlines(), 1):
            for ref in MD_REFERENCE.findall(line):
                if not ((root / ref).is_file() or (root / rel).parent.joinpath(ref).is_file()):
                    missing.append(f"{rel}:{lineno}: {ref}")
    return missing


def test_every_cited_markdown_file_is_in_the_repository():
    files = tracked_files()
    assert "docs/design.md" in files and "docs/formulas.md" in files
    missing = missing_references(ROOT, files)
    assert not missing, "cited but not in the repository:\n" + "\n".join(missing)


def test_the_check_finds_a_citation_of_a_missing_file(tmp_path):
    md, up = "md", ".."  # the names below are built, so this file cites nothing itself
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / f"formulas.{md}").write_text("see section 7\n")
    (tmp_path / "a.py").write_text(f'"""See docs/formulas.{md} 7 and README.{md}; DESIGN.{md}, {up}/shared/x.{md}."""\n')
    (tmp_path / "docs" / f"design.{md}").write_text(f"the formulas: formulas.{md}\n")  # relative to docs/
    found = missing_references(tmp_path, ["a.py", f"docs/formulas.{md}", f"docs/design.{md}"])
    assert found == [f"a.py:1: README.{md}", f"a.py:1: DESIGN.{md}", f"a.py:1: {up}/shared/x.{md}"], found
