"""What a process is: its package's version and the git commit it was built from.

Shown on `/health/live` and in an `X-MIF-Version` response header, so that an operator (or a bug
report) can tell which build answered. The commit comes from `MIF_GIT_COMMIT` (the image's build
argument), else from the checkout the code runs in (development), else "unknown".
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from mif_common.suite import REPO_ROOT


@dataclass(frozen=True, slots=True)
class BuildInfo:
    name: str
    version: str
    commit: str

    @property
    def header(self) -> str:
        """`auth/0.1.0+f758415`: the value of the `X-MIF-Version` header."""
        return f"{self.name}/{self.version}+{self.commit}"

    def as_dict(self) -> dict[str, str]:
        return {"service": self.name, "version": self.version, "commit": self.commit}


def _commit() -> str:
    if configured := os.environ.get("MIF_GIT_COMMIT", "").strip():
        return configured[:40]
    if not (REPO_ROOT / ".git").exists():
        return "unknown"
    try:
        found = subprocess.run(  # noqa: S603 - fixed argv, read-only
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip() or "unknown"


@cache
def build_info(name: str) -> BuildInfo:
    """The build of service `name` (package `mif-<name>`), computed once per process."""
    try:
        package_version = version(f"mif-{name}")
    except PackageNotFoundError:
        package_version = "0+unknown"
    return BuildInfo(name=name, version=package_version, commit=_commit())
