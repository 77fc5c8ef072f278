"""Same-run serving benchmarks (`nox -s bench`)."""
