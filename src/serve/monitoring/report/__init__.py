"""Offline drift report: production inputs vs the training reference, as one HTML file.

    python -m src.serve.monitoring.report --model-dir artifacts/iris_classifier/<version> \\
        --input production.csv --output report.html
    python -m src.serve.monitoring.report --artifacts-dir artifacts --model-name iris_classifier \\
        --input window.json --output report.html        # resolves artifacts/<name>/LATEST

- :mod:`.inputs`: reads the CSV or JSON input into rows in feature order;
- :mod:`.analysis`: judges them exactly as the live monitor judges its window;
- :mod:`.html_page`: renders the result as a self-contained HTML page;
- :mod:`.cli`: the command (finds ``metadata.json`` with the service's artifact resolver).
"""
