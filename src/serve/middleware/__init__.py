"""The pure-ASGI middleware around every request, outermost first: security headers
(``security_headers.py``), the request context - id, body limit, version headers, access log,
metrics, error rendering (``request_context.py``) - and the time limit (``time_limit.py``)."""
