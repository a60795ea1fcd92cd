"""The `proxygrad` command line."""
import subprocess
import sys

from proxygrad import cli


def test_demo_shows_relu_stuck_and_proxygrad_at_optimum(capsys):
    assert cli.main(["demo", "--pixels", "200"]) == 0
    out = capsys.readouterr().out
    relu_line = next(line for line in out.splitlines() if line.strip().startswith("relu"))
    proxy_line = next(line for line in out.splitlines() if line.strip().startswith("proxygrad"))
    assert "100.0% of the optimum" in proxy_line and "100.0%" not in relu_line


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_bad_slope_is_a_clear_error_not_a_traceback():
    result = subprocess.run([sys.executable, "-m", "proxygrad.cli", "demo", "--slope", "-1"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "slope" in result.stderr and "Traceback" not in result.stderr
