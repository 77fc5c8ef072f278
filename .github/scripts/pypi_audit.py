"""Partial fallback for pip-audit where PyPI's per-version JSON API is unreachable.

pip-audit asks ``https://pypi.org/pypi/<name>/<version>/json`` for each pin. Some networks
(this project's development sandbox among them) reach PyPI's index and its per-project API
``https://pypi.org/pypi/<name>/json`` but not the per-version one. The per-project answer lists
the known vulnerabilities of the project's *latest* release, so for every pin that IS the
latest release it is exactly what pip-audit would report; a pin below the latest release cannot
be verified this way and is listed as such (GitHub CI runs the real pip-audit and covers it).

Usage: python .github/scripts/pypi_audit.py REQUIREMENTS.txt... [--ignore-vuln ID]...
                                            [--allow-unverified]
Exit 1 on any known vulnerability (not ignored), any pin that could not be looked up, and any
pin that could not be verified: this is not a pass. ``--allow-unverified`` (an explicit opt-in
for offline development only) turns unverified pins into a loud warning, exit 0 if nothing
else failed; the summary then says plainly that the audit is INCOMPLETE.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")
API = "https://pypi.org/pypi/{name}/json"


@dataclass
class Result:
    name: str
    version: str
    latest: str | None = None
    vulns: list[dict] = field(default_factory=list)
    error: str | None = None


def read_pins(paths: list[Path]) -> dict[str, str]:
    """``{normalised name: version}`` from ``name==version`` lines of pinned requirement files."""
    pins: dict[str, str] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            match = PIN.match(line.strip())
            if match:
                name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
                pins[name] = match.group(2)
    return pins


def look_up(name: str, version: str) -> Result:
    result = Result(name, version)
    try:
        with urllib.request.urlopen(API.format(name=name), timeout=30) as response:  # noqa: S310 - fixed https URL
            data = json.load(response)
    except Exception as exc:  # any failure is reported and fails the run
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    result.latest = data["info"]["version"]
    if result.latest == version:
        result.vulns = [v for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="+", type=Path)
    parser.add_argument("--ignore-vuln", action="append", default=[], metavar="ID")
    parser.add_argument(
        "--allow-unverified",
        action="store_true",
        help="warn instead of failing on pins this API cannot verify (offline development only)",
    )
    args = parser.parse_args(argv)
    ignored = set(args.ignore_vuln)

    pins = read_pins(args.requirements)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda item: look_up(*item), sorted(pins.items())))

    failed = False
    exact = [r for r in results if r.error is None and r.latest == r.version]
    unverified = [r for r in results if r.error is None and r.latest != r.version]
    for r in results:
        if r.error:
            failed = True
            print(f"ERROR {r.name}=={r.version}: lookup failed: {r.error}")
        for vuln in r.vulns:
            ids = {vuln.get("id"), *(vuln.get("aliases") or [])}
            if ids & ignored:
                print(f"ignored {r.name}=={r.version}: {vuln.get('id')} (see noxfile.py)")
                continue
            failed = True
            fixed = ", ".join(vuln.get("fixed_in") or []) or "no fix yet"
            print(f"VULNERABLE {r.name}=={r.version}: {vuln.get('id')} (fixed in: {fixed})")
    if unverified:
        listing = ", ".join(f"{r.name}=={r.version} (latest {r.latest})" for r in unverified)
        print(f"NOT VERIFIED (pinned below the latest release): {listing}")
    known = sum(len(r.vulns) for r in results)
    print(
        f"pypi_audit: {len(pins)} pins from {len(args.requirements)} files; "
        f"{len(exact)} checked exactly, {len(unverified)} NOT verified, "
        f"{known} known vulnerabilities"
    )
    if unverified and args.allow_unverified:
        print(
            f"WARNING: AUDIT INCOMPLETE: {len(unverified)} pins were NOT checked for known "
            "vulnerabilities (--allow-unverified); run pip-audit where PyPI's per-version API "
            "is reachable (GitHub CI does) before relying on this result"
        )
    elif unverified:
        failed = True
        print(
            f"FAILED: {len(unverified)} pins could not be verified here; this is not a pass. "
            "Run pip-audit where PyPI's per-version API is reachable, or pass "
            "--allow-unverified to accept an incomplete audit for offline development"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
