"""Refuse to serve in the open by accident: a router reachable from other machines needs credentials.

With no API keys every caller would be an admin, and with no worker credentials anyone could join the pool
and receive prompts; on loopback only this machine can call, which is what `modelyard up` needs.
`allow_open` (`--allow-open`) says the operator means it (a private network, a proxy doing the checks).
"""

from __future__ import annotations

import logging

from core.network import is_loopback
from router.config.settings import RouterConfig

log = logging.getLogger(__name__)


class ExposureError(ValueError):
    """A non-loopback listener without the credentials it needs; the message names --allow-open."""


def check_exposure(config: RouterConfig, has_api_keys: bool) -> None:
    registry = config.registry_listen or config.listen
    problems = []
    if not has_api_keys and not is_loopback(config.listen):
        problems.append(
            f"no API keys are configured, so every caller on {config.listen} would be an admin "
            "(add keys: `modelyard router hash-key`)"
        )
    if config.http_listen and not has_api_keys and not is_loopback(config.http_listen):
        problems.append(
            f"no API keys are configured, so anyone reaching the HTTP door on {config.http_listen} could use "
            "every backend (add keys, or http_listen on 127.0.0.1)"
        )
    if not config.workers.authenticated and not is_loopback(registry):
        problems.append(
            f"no worker credentials are configured, so anyone reaching {registry} could join the pool "
            "and receive prompts (set MODELYARD_WORKER_TOKEN or workers.token_file, or workers.tls_ca)"
        )
    if problems and not config.allow_open:
        raise ExposureError(
            "refusing to serve a non-loopback address in the open: "
            + "; ".join(problems)
            + ". Pass --allow-open (or allow_open: true) if that is what you want."
        )
    for problem in problems:
        log.warning("serving in the open (allow_open): %s", problem)
    if not config.tls_cert and not is_loopback(config.listen) and (has_api_keys or config.workers.token):
        log.warning("credentials travel in clear on %s: configure tls_cert and tls_key", config.listen)
    if not config.tls_cert and config.http_listen and not is_loopback(config.http_listen) and has_api_keys:
        log.warning("API keys travel in clear on %s: configure tls_cert and tls_key", config.http_listen)
