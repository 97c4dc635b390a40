"""The router's trust boundary: listener TLS, who may serve in the open, worker identity and credentials."""
