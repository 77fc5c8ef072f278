#!/usr/bin/env bash
# code-validation, locally too: ruff lint + format check, import boundaries, hadolint,
# workflow/dependabot schemas, zizmor, compose validation, Kubernetes manifests, promtool.
#   .github/scripts/check_format.sh          # check only (what CI runs)
#   .github/scripts/check_format.sh --fix    # first apply ruff's fixes and formatting
# Needs: pip install -r validation_requirements.txt; docker-compose (apt-get install docker-compose).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v nox >/dev/null 2>&1; then
  echo "nox not found: python -m pip install -r validation_requirements.txt" >&2
  exit 2
fi
if [[ "${1:-}" == "--fix" ]]; then
  shift
  ruff check --fix .
  ruff format .
fi
exec nox -s lint -- "$@"
