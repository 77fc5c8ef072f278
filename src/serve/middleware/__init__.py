"""The pure-ASGI middleware around every request: the request context (``request_context.py``:
id, body limit, version and security headers, the time limit, access log, metrics, error
rendering), with the policies it applies in their own modules: the security headers
(``security_headers.py``) and the time limit (``time_limit.py``)."""
