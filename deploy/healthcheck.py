"""Container health probe without curl: exit 0 when the URL answers 2xx, 1 otherwise.

Usage: python deploy/healthcheck.py [URL]
URL defaults to $HEALTHCHECK_URL, else http://127.0.0.1:$PORT/health/live (PORT defaults to 8000).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def default_url() -> str:
    return os.environ.get("HEALTHCHECK_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health/live"


def check(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return 200 <= status < 300


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else default_url()
    if check(url):
        return 0
    print(f"unhealthy: {url}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
