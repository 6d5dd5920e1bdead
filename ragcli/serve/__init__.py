"""`ragcli serve`: the query pipeline kept warm behind an HTTP JSON API, and the client `ragcli ask` uses.

- discovery.py: `<home>/serve.json` (pid, port, started, config digest), written by the server, read by
  the client. Standard library only.
- client.py: asks a healthy server with http.client, so `ragcli ask` never imports lancedb, pyarrow or
  onnxruntime (nor httpx) when a server is up. Standard library only.
- runtime.py: the warm engine, the bounded worker pool, index refresh and batched telemetry.
- metrics.py: Prometheus metrics (prometheus-client).
- app.py: the Starlette application; server.py: uvicorn, signals and serve.json.

Only discovery and client are imported by the CLI's `ask`; the rest needs the `serve` extra.
"""
