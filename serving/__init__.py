"""What `service.py` builds the HTTP service from: request and answer schemas, security
middleware, Prometheus telemetry, the prediction log, and BentoML's private APIs in
one module. Imports core, features and model; never training."""
