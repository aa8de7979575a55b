"""OTLP over gRPC: the trace, logs and metrics Export services on TELEMETRY_GRPC_PORT.

The same decoding, auth, limits and durable writer as OTLP/HTTP (`app/api/otlp.py`); only
the transport and the way answers are spelled differ (`status.py`, `otlp.py`). The server
runs on the event loop of each worker process and is started and stopped by the app's
lifespan (`server.py`).
"""
