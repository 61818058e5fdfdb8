"""Every ```python block in the README runs as written (each in a fresh interpreter)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CLEW_EXPORTER": "none",
        "CLEW_STRICT": "1",  # a failure inside clew fails the example, as it would a test
        "PYTHONPATH": str(README.parent / "src"),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    result = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"README block {index} failed:\n{BLOCKS[index]}\n{result.stderr}"


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```bash\n(.*?)\n```", README.read_text(), flags=re.DOTALL)
    (test_command,) = [c for c in commands if "pytest" in c and "ruff check" in c]
    ci = (README.parent / ".ci" / "run").read_text()
    assert test_command + " || exit" in ci
