"""The README's service install, done as documented in a fresh directory tree.

``systemd/install.sh PREFIX`` on this machine's system Python (Debian 12: PEP 668 refuses
``pip install`` outside a venv): the venv is made, the unit's ExecStartPre=/ExecStart=
name its console script, which runs (``--version``, ``check-config`` on the example
config), and ``systemd-analyze verify`` accepts the installed unit (it needs no systemd
as PID 1 for a unit file given by path; it checks the unit's directives and that every
Exec*= binary exists and is executable). Starting the unit itself is not tested here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "systemd" / "install.sh"
SYSTEM_PYTHON = Path("/usr/bin/python3")
ANALYZE = shutil.which("systemd-analyze")
HIDDEN = ("/home", "/root", "/run/user")  # what ProtectHome=yes hides from the service

needs_system_python = pytest.mark.skipif(
    not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3 (a stock Debian/Ubuntu has one)"
)


def install(prefix: Path, tree: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the documented install with PREFIX, the unit and README going under ``tree``."""
    environment = {
        **os.environ,
        "UNIT_DIR": str(tree / "etc/systemd/system"),
        "DOC_DIR": str(tree / "usr/share/doc/datasaur-notifier"),
        **env,
    }
    return subprocess.run(
        ["sh", str(INSTALL), str(prefix)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )


def exec_lines(unit: Path, name: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in unit.read_text().splitlines()
        if line.startswith(name + "=")
    ]


def under_hidden(path: str) -> bool:
    return any(path == top or path.startswith(top + "/") for top in HIDDEN)


@needs_system_python
def test_documented_install_into_a_venv_under_the_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "opt" / "datasaur-notifier"
    result = install(prefix, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (prefix / "pyvenv.cfg").is_file(), "no venv at the prefix"
    unit = tmp_path / "etc/systemd/system/datasaur-notifier.service"
    binary = prefix / "bin" / "datasaur-notifier"
    (start,) = exec_lines(unit, "ExecStart")
    (pre,) = exec_lines(unit, "ExecStartPre")
    assert shlex.split(start)[0] == str(binary)
    assert shlex.split(pre)[0] == str(binary)
    assert shlex.split(pre)[-1] == "check-config"
    # the script runs on the system interpreter, not one ProtectHome= hides (pyenv, ~/.local)
    shebang = binary.read_text().splitlines()[0].removeprefix("#!")
    assert not under_hidden(os.path.realpath(shebang)), shebang
    assert not under_hidden(str(prefix))
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("datasaur-notifier "), version

    # ExecStartPre= as written, on the example config with its two credentials
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "datasaur-client-secret").write_text("client-secret\n")
    (credentials / "webhook-secret").write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
    config = tmp_path / "config.yaml"
    shutil.copy(ROOT / "config.example.yaml", config)
    argv = shlex.split(pre)
    argv[argv.index("-c") + 1] = str(config)
    checked = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(credentials)},
    )
    assert checked.returncode == 0, checked.stderr
    assert (tmp_path / "usr/share/doc/datasaur-notifier/README.md").is_file()

    if ANALYZE is None:
        pytest.skip("systemd-analyze is not installed: the unit was not verified")
    verified = subprocess.run(
        [ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "datasaur-notifier.service" not in verified.stderr, verified.stderr


@pytest.mark.parametrize("prefix", ["/root/datasaur-notifier", "/home/ops/notifier", "opt/x"])
def test_a_prefix_the_service_cannot_see_is_refused(tmp_path: Path, prefix: str) -> None:
    result = install(Path(prefix), tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"install.sh: PREFIX {prefix}: "), line


def test_an_interpreter_without_venv_names_python3_venv(tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$2" in *ensurepip*) exit 1 ;; esac\n'  # python3 -c 'import ensurepip, venv'
        "exit 0\n"
    )
    fake.chmod(0o755)
    result = install(tmp_path / "opt" / "dn", tmp_path, PYTHON=str(fake))
    assert result.returncode == 1
    assert "apt-get install python3-venv" in result.stderr, result.stderr
    assert not (tmp_path / "opt" / "dn").exists()


def test_readme_documents_the_install_script_and_python3_venv() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running under systemd", 1)[1].split("\n## ", 1)[0]
    assert "apt-get install python3-venv" in section
    assert "systemd/install.sh" in section
    assert "/opt/datasaur-notifier" in section
    assert "pip install ." not in section.split("```")[1], "pip into the system Python"
