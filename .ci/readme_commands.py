"""Print README.md's set-up commands, one per line: the fenced ``bash`` blocks marked for CI.

Each is marked by the line ``<!-- setup command (CI runs it exactly) -->`` right before its fence and
holds one command line. ``.ci/run`` runs them in order in one fresh virtual environment, so the
commands a new user copies are the ones CI checks. Exits 1 (with one line) unless there are exactly
two: one that installs and runs the main job, one that installs the test extras and runs the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

MARKER = "<!-- setup command (CI runs it exactly) -->"


def setup_commands(readme: str) -> list[str]:
    lines = readme.splitlines()
    commands = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        if i + 2 >= len(lines) or lines[i + 1].strip() != "```bash":
            raise ValueError(f"README.md line {i + 1}: the marker must be followed by a ```bash block")
        end = lines.index("```", i + 2)
        body = [entry for entry in lines[i + 2 : end] if entry.strip()]
        if len(body) != 1:
            raise ValueError(f"README.md line {i + 1}: a setup block holds one command line; got {len(body)}")
        commands.append(body[0].strip())
    return commands


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    try:
        commands = setup_commands((root / "README.md").read_text(encoding="utf-8"))
    except ValueError as exc:
        print(f"readme_commands: {exc}", file=sys.stderr)
        return 1
    if len(commands) != 2:
        print(f"readme_commands: README.md marks {len(commands)} setup commands; it must mark exactly two", file=sys.stderr)
        return 1
    print("\n".join(commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
