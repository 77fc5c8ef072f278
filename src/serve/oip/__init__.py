"""The Open Inference Protocol (KServe V2, REST) over the one data plane.

``tensors.py`` reads and writes tensors (JSON ``data`` and the binary tensor data extension),
``codec.py`` turns an inference request into validated rows and predictions into output
tensors, ``metadata.py`` describes the server and a model. The routes live in
``src/serve/routes/oip.py``; every request step that is not the protocol's own (key check,
rate limit, model readiness, body limit, inference, metrics, logs, monitoring) is the data
plane's (``src/serve/dataplane.py``). docs/serving.md has the mapping.
"""
