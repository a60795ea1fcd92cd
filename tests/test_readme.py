"""The README's two set-up commands stay true: the test command is what CI runs."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert text.index("```bash") < 40, "the set-up commands must be at the very top"
    commands = _setup_commands()
    assert len(commands) == 2
    assert commands[0].startswith("python3 -m venv .venv") and ".venv/bin/proxygrad" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _setup_commands()[1] in ci
