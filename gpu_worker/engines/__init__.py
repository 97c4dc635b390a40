"""Inference engines behind small abstract interfaces (see `base`), one module per implementation."""
