"""The gRPC servicers: the only router code that sees a request context."""
