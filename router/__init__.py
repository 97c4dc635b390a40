"""The Modelyard router: one gRPC front door that picks a backend for each request and relays its answer."""
