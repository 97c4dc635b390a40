"""What router, worker and client all speak: status errors, request validation, shared constants."""
