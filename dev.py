#!/usr/bin/env python3
"""Bugnet's developer entry point: set up, then run.

    python3 dev.py demo     capture an error with the SDK and show what would be sent
    python3 dev.py test     lint, type-check and run every test

Each command creates (or refreshes) the virtual environment in ``.venv`` first, so a fresh
machine with only Python 3.11 needs nothing else.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("BUGNET_DEV_VENV", ROOT / ".venv"))
# What the environment is built from: a change to any of these reinstalls.
INSTALL_INPUTS = [ROOT / "sdk" / "pyproject.toml"]
INSTALL_ARGS = ["-e", f"{ROOT / 'sdk'}[test]"]


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv() -> Path:
    """Create the virtual environment and install the packages, unless it is up to date."""
    digest = hashlib.sha256()
    for path in INSTALL_INPUTS:
        digest.update(path.read_bytes())
    digest.update(" ".join(INSTALL_ARGS).encode())
    stamp = VENV / ".bugnet-installed"
    python = venv_python()
    if python.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return python
    if not python.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip>=23"], check=True)
    subprocess.run([*pip, "install", *INSTALL_ARGS], check=True)
    stamp.write_text(digest.hexdigest())
    return python


def run(*args: str, cwd: Path = ROOT) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=cwd, check=True)


def cmd_test(extra: list[str]) -> None:
    python = str(ensure_venv())
    run(python, "-m", "ruff", "check", "sdk", "benchmarks", "dev.py")
    run(python, "-m", "ruff", "format", "--check", "sdk", "benchmarks", "dev.py")
    run(python, "-m", "mypy", cwd=ROOT / "sdk")
    run(python, "-m", "pytest", *extra, cwd=ROOT / "sdk")


def cmd_demo(extra: list[str]) -> None:
    python = str(ensure_venv())
    run(python, str(ROOT / "sdk" / "demo.py"), *extra)


COMMANDS = {"test": cmd_test, "demo": cmd_demo}


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
