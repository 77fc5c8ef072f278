"""``python -m src.serve.monitoring.report``: see :mod:`src.serve.monitoring.report.cli`."""

from src.serve.monitoring.report.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
