"""The OpenAI-compatible HTTP door: an aiohttp server in the router's process and event loop, in front of
the same request pipeline, scheduler, tenants, budgets, cache and ledger as the gRPC Router service.

aiohttp was chosen by measurement (bench/http_servers.py, README "HTTP door"): in the same loop as grpc.aio
it answered at 0.49 ms p50 against uvicorn+starlette's 44 ms, and streamed about twice the chunks/s.

Every /v1/ call passes the same gate as gRPC calls (counted for a graceful stop, refused once stopping) and
needs the same API key. A client that hangs up cancels its handler, and with it the upstream call.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from aiohttp import web
from aiohttp.typedefs import Handler

from core.addresses import bind_host_port, dial_address
from core.errors import StatusError
from router.accounting.auth import Authenticator
from router.call_gate import CallGate
from router.config.settings import RouterConfig
from router.pipeline import RequestPipeline
from router.readiness import Readiness
from router.routing.state import RoutingState
from router.services.http.call import call_of
from router.services.http.chat import ChatHandler
from router.services.http.embeddings import EmbeddingsHandler
from router.services.http.errors import http_error, plain_error
from router.services.http.messages import MessagesHandler, anthropic_error
from router.services.http.models import HealthHandler, ModelsHandler
from router.services.http.origin import content_type_refusal, origin_refusal
from router.services.http.tls import DoorTls
from router.services.http.transcriptions import FormLimits, TranscriptionsHandler

log = logging.getLogger(__name__)
_API = "/v1/"
_ANTHROPIC = "/v1/messages"  # Anthropic's Messages API; its errors take Anthropic's shape


class HttpDoor:
    def __init__(
        self,
        config: RouterConfig,
        state: RoutingState,
        pipeline: RequestPipeline,
        auth: Authenticator,
        gate: CallGate,
        readiness: Readiness,
    ) -> None:
        if config.http_max_body_bytes < 1:
            raise ValueError("http_max_body_bytes: must be at least 1")
        self._config = config
        self._auth = auth
        self._gate = gate
        models = ModelsHandler(state)
        # Transcription uploads stream through their own bound (input.max_audio_bytes), not client_max_size.
        app = web.Application(middlewares=[self._middleware], client_max_size=config.http_max_body_bytes)
        app.add_routes(
            [
                web.post("/v1/chat/completions", ChatHandler(pipeline, config.http_max_choices).handle),
                web.post("/v1/embeddings", EmbeddingsHandler(pipeline).handle),
                web.post(_ANTHROPIC, MessagesHandler(pipeline).handle),
                web.post(
                    "/v1/audio/transcriptions",
                    TranscriptionsHandler(
                        pipeline,
                        config.input.max_audio_bytes,
                        FormLimits(config.http_max_form_fields, config.http_max_form_bytes),
                    ).handle,
                ),
                web.get("/v1/models", models.list),
                web.get("/v1/models/{model}", models.retrieve),
                web.get("/health", HealthHandler(readiness, gate).live),
                web.get("/ready", HealthHandler(readiness, gate).ready),
            ]
        )
        # The gate has drained the calls by the time it stops; what is left is cut at once.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.0)
        # The router's certificate (tls_cert/tls_key, tls_client_ca for mutual TLS), as on the gRPC listener.
        self._tls = DoorTls(config) if config.tls_cert else None
        self._watch: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return dial_address(self._config.http_listen, self.port)

    @property
    def base_url(self) -> str:
        """What an openai SDK takes as base_url."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self.address}/v1"

    async def start(self) -> int:
        host, port = bind_host_port(self._config.http_listen)
        listener = socket.create_server((host, port))
        await self._runner.setup()
        ssl_context = self._tls.context if self._tls is not None else None
        site = web.SockSite(self._runner, listener, backlog=1024, ssl_context=ssl_context)
        await site.start()
        self.port = listener.getsockname()[1]
        if self._tls is not None:
            self._watch = asyncio.create_task(self._tls.watch())
        log.info("OpenAI-compatible HTTP door on %s", self.base_url)
        return self.port

    async def stop(self) -> None:
        """After the gate has drained: close the listener and whatever connections are left."""
        if self._watch is not None:
            self._watch.cancel()
        await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if not request.path.startswith(_API):
                return await handler(request)
            refused = origin_refusal(request, self._auth.open, self._config.http_allowed_hosts)
            if refused is not None:
                return refused.response()
            with self._gate.admitted():
                # The key before the body: nobody unknown gets a large upload read or a parse error back.
                self._auth.authenticate(call_of(request).metadata)
                if (refused := content_type_refusal(request)) is not None:
                    return refused.response()
                return await handler(request)
        except StatusError as e:
            return anthropic_error(e) if request.path == _ANTHROPIC else http_error(e).response()
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return plain_error(e.status, e.reason if e.status != 413 else _too_large(self._config)).response()
        except asyncio.CancelledError:
            raise
        except RecursionError:  # JSON that parsed but nests too deep for a later step (schemas, conversion)
            return plain_error(400, "body: JSON nested too deeply").response()
        except Exception:
            log.exception("HTTP door: %s %s failed", request.method, request.path)
            return plain_error(500, "internal error; the router logged it", "server_error").response()


def _too_large(config: RouterConfig) -> str:
    return f"body: larger than the {config.http_max_body_bytes} byte limit (http_max_body_bytes)"
