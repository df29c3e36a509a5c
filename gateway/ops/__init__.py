"""Running the gateway for real: request ids, the access log and request metrics (wsgi.py), Prometheus
metrics at /metrics (metrics.py, app.py), the JSON error log (logs.py), gunicorn's side of multiprocess
metrics (serving.py), backup and restore (backup.py). Only app.py imports Flask."""
