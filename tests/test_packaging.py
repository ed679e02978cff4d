"""The install puts everything under the `initscope` name: no generic top-level `engine` or `tui`."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_install_exposes_only_the_initscope_package(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True)
    top = sorted(p.name for p in target.iterdir() if p.name != "bin")
    assert [n for n in top if not n.startswith("initscope-")] == ["initscope"], top
    # every source module of the two folders is installed under initscope/, and the stylesheet too
    for folder in ("engine", "tui"):
        for src in (ROOT / folder).rglob("*.py"):
            assert (target / "initscope" / folder / src.relative_to(ROOT / folder)).is_file(), src
    assert (target / "initscope" / "tui" / "app.tcss").is_file()
