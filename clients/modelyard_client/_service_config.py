"""The gRPC service config every channel of this client uses: round_robin over whatever addresses the target
resolves to, and a retry policy for UNAVAILABLE.

The retry is safe for streams: gRPC retries a call only while no response has come back (before its
headers), so a Chat stream that has sent text is never started again. UNAVAILABLE is what a router that is
stopping or has no backend yet answers, and what a connection refused or reset before an answer gives. The
README ("Faults") shows the same JSON for clients in other languages.
"""

from __future__ import annotations

import json
from typing import Any

# Attempts include the first; backoff is randomised in [0, the current backoff].
MAX_ATTEMPTS = 4

SERVICE_CONFIG: dict[str, Any] = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [
                {"service": "modelyard.v1.RouterService"},
                {"service": "modelyard.v1.AdminService"},
                {"service": "modelyard.v1.AccountingService"},
            ],
            "retryPolicy": {
                "maxAttempts": MAX_ATTEMPTS,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}


def service_config_option() -> tuple[str, str]:
    return ("grpc.service_config", json.dumps(SERVICE_CONFIG))
