"""Model monitoring: live drift and data-quality signals against the training reference.

- :mod:`.drift`: PSI over the artifact's reference bins, statuses and thresholds;
- :mod:`.window`: :class:`ModelMonitor`, a fixed-size window of recent inputs and predictions
  updated once per answered request and judged lazily (on scrape / ``GET /monitoring``);
- :mod:`.config`: the monitor's part of the serving settings;
- :mod:`.prometheus`: the exported series; :mod:`.service`: the serving hook;
- :mod:`.report`: ``python -m src.serve.monitoring.report``, a self-contained HTML report
  comparing a CSV (or an exported window) with the reference.

See docs/monitoring.md for how to read the signals.
"""

from src.serve.monitoring.drift import (
    STATUS_CODES,
    MonitoringError,
    MonitorSpec,
    Thresholds,
    psi,
)
from src.serve.monitoring.window import ModelMonitor

__all__ = ["STATUS_CODES", "ModelMonitor", "MonitorSpec", "MonitoringError", "Thresholds", "psi"]
