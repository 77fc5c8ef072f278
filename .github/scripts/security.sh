#!/usr/bin/env bash
# code-security, locally too: bandit on src/, pip-audit on every pinned requirements file
# (zero known vulnerabilities; accepted ones are listed with a reason in noxfile.py) and
# detect-secrets over all tracked files against .secrets.baseline.
#   .github/scripts/security.sh
# After reviewing a detect-secrets finding that is NOT a secret, refresh the baseline with
#   detect-secrets scan --baseline .secrets.baseline && detect-secrets audit .secrets.baseline
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v nox >/dev/null 2>&1; then
  echo "nox not found: python -m pip install -r validation_requirements.txt" >&2
  exit 2
fi
exec nox -s security -- "$@"
