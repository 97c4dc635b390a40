"""Settings for who may join the worker pool and how the router's listeners are protected.

tls_cert: /etc/modelyard/tls/tls.crt     # TLS on the client listener (re-read when the files change)
tls_key: /etc/modelyard/tls/tls.key
tls_client_ca: ""                        # set: every client presents a certificate this CA signed
registry_listen: 0.0.0.0:50052           # workers register here; empty: on the main listener
allow_open: false                        # serve a non-loopback address with no API keys / worker credentials
workers:
  token_file: /etc/modelyard/worker-token  # or $MODELYARD_WORKER_TOKEN; workers send the same
  tls_ca: /etc/modelyard/tls/ca.crt      # mTLS: workers' certificates must be signed by it, both ways
  tls_cert: ""                           # the router's certificate when it calls workers (default: tls_cert)
  tls_key: ""
  tls_server_name: ""                    # the name in the workers' certificates, when not their address
  allowed_models: []                     # empty: any model
  max_workers: 4096                      # registrations held at once
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import PositiveInt

from core.worker_token import WorkerTokenError, load_worker_token
from router.config.schema import ConfigError

DEFAULT_MAX_WORKERS = 4096


@dataclass(frozen=True)
class WorkersConfig:
    token_file: str = ""
    # The token itself: never from the config file (the loader refuses it there), only from token_file or
    # $MODELYARD_WORKER_TOKEN, filled in by load_worker_credentials.
    token: str = field(default="", repr=False)
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_server_name: str = ""
    allowed_models: tuple[str, ...] = ()
    max_workers: PositiveInt = DEFAULT_MAX_WORKERS

    @property
    def authenticated(self) -> bool:
        """Whether joining the pool needs a credential (a token, or a certificate signed by tls_ca)."""
        return bool(self.token or self.tls_ca)


def load_worker_credentials(workers: WorkersConfig, env: Mapping[str, str], source: str) -> WorkersConfig:
    """`workers` with its token read from token_file, else from $MODELYARD_WORKER_TOKEN."""
    if workers.token:
        raise ConfigError(
            f"{source}: workers.token: keep secrets out of the file; use token_file or $MODELYARD_WORKER_TOKEN"
        )
    try:
        token = load_worker_token(workers.token_file, env)
    except WorkerTokenError as e:
        raise ConfigError(f"{source}: workers: {e}") from None
    return dataclasses.replace(workers, token=token)
