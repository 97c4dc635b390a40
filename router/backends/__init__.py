"""Places a request can run: GPU workers and cloud providers, all behind `Backend`."""
