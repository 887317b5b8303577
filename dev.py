#!/usr/bin/env python3
"""Bugnet's developer entry point: set up, then run.

    python3 dev.py serve    start the server on its embedded default (SQLite in a data dir)
    python3 dev.py test     lint, type-check and run every test
    python3 dev.py demo     capture errors with the SDK and show what is sent

Each command creates (or refreshes) the virtual environment in ``.venv`` first, so a fresh
machine with only Python 3.11 needs nothing else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("BUGNET_DEV_VENV", ROOT / ".venv"))
# What the environment is built from: a change to any of these reinstalls.
INSTALL_INPUTS = [ROOT / "sdk" / "pyproject.toml", ROOT / "server" / "pyproject.toml"]
INSTALL_ARGS = ["-e", f"{ROOT / 'sdk'}[test]", "-e", f"{ROOT / 'server'}[test]"]


# The SDK supports Python >= 3.9: when that interpreter is on the machine, its tests run there too.
OLDEST_SDK_PYTHON = "python3.9"


def venv_python(where: Path) -> Path:
    return where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(
    where: Path = VENV, base: str = sys.executable, args: list[str] = INSTALL_ARGS
) -> Path:
    """Create the virtual environment and install the packages, unless it is up to date."""
    digest = hashlib.sha256()
    for path in INSTALL_INPUTS:
        digest.update(path.read_bytes())
    digest.update(" ".join([base, *args]).encode())
    stamp = where / ".bugnet-installed"
    python = venv_python(where)
    if python.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return python
    if not python.exists():
        print(f"creating virtual environment in {where}", flush=True)
        if base == sys.executable:
            venv.EnvBuilder(with_pip=True, clear=True).create(where)
        else:
            subprocess.run([base, "-m", "venv", "--clear", str(where)], check=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip>=23"], check=True)
    subprocess.run([*pip, "install", *args], check=True)
    stamp.write_text(digest.hexdigest())
    return python


def oldest_sdk_python() -> str | None:
    """The oldest Python the SDK supports, if this machine has a working one."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(OLDEST_SDK_PYTHON)]
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.9*/bin/python3.9"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 9)":
            return candidate
    return None


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=cwd, check=True, env={**os.environ, **(env or {})})


def cmd_test(extra: list[str]) -> None:
    python = str(ensure_venv())
    run(python, "-m", "ruff", "check", "sdk", "server", "benchmarks", "dev.py")
    run(python, "-m", "ruff", "format", "--check", "sdk", "server", "benchmarks", "dev.py")
    run(python, "-m", "mypy", cwd=ROOT / "sdk")
    with tempfile.TemporaryDirectory() as scratch:  # django-stubs loads the settings
        quiet = {"BUGNET_DATA_DIR": scratch, "BUGNET_SECRET_KEY": "type-checking-only"}
        run(python, "-m", "mypy", cwd=ROOT / "server", env=quiet)
    run(python, "-m", "pytest", *extra, cwd=ROOT / "sdk")
    run(python, "-m", "pytest", *extra, cwd=ROOT / "server")
    old = oldest_sdk_python()
    if old is None:
        print(f"SDK compatibility run skipped: no working {OLDEST_SDK_PYTHON} on this machine")
    else:
        old_python = ensure_venv(
            ROOT / ".venv-py39", old, ["pytest>=8.0", "-e", f"{ROOT / 'sdk'}[test-frameworks]"]
        )
        run(str(old_python), "-m", "pytest", "-q", *extra, cwd=ROOT / "sdk")


def cmd_demo(extra: list[str]) -> None:
    python = str(ensure_venv())
    run(python, str(ROOT / "sdk" / "demo.py"), *extra)


def cmd_serve(extra: list[str]) -> None:
    python = ensure_venv()
    bugnet = python.parent / ("bugnet.exe" if os.name == "nt" else "bugnet")
    os.execv(str(bugnet), [str(bugnet), "serve", *extra])


COMMANDS = {"serve": cmd_serve, "test": cmd_test, "demo": cmd_demo}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    try:
        COMMANDS[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode or 1)


if __name__ == "__main__":
    main()
