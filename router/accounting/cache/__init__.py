"""The response cache: exact repeats of deterministic chat requests are answered without a backend."""
