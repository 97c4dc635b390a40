"""Router settings. Built-in defaults run with no file at all."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from core.input_limits import InputLimits
from router.config.accounting import ApiKey, Budget, CacheConfig
from router.config.admission import AdmissionConfig, LocalFirstConfig
from router.config.lifecycle import ShutdownConfig
from router.config.limits import LimitsConfig
from router.config.migration import MigrationConfig
from router.config.pool import PoolConfig
from router.config.security import WorkersConfig

# Field types carry their limits; router.config.schema enforces them (and the types) on every config it loads.
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


@dataclass
class RetryPolicy:
    """Failover before the first chunk: bounded attempts, exponential backoff with full jitter."""

    max_attempts: PositiveInt = 3
    backoff_base_s: NonNegativeFloat = 0.05
    backoff_max_s: NonNegativeFloat = 2.0


@dataclass
class PrefixConfig:
    """Prefix-aware routing (router.routing.prefix_index): what the router remembers of workers' KV caches.

    The scorer's weight is in the strategies' weights ("prefix"); these bound its memory and its pull.
    """

    block_bytes: int = 256  # prefix key granularity: about 64 tokens of conversation
    max_keys: int = 200_000  # in all workers together: about 50 MB at most (240 bytes a key)
    max_keys_per_worker: int = 50_000  # per worker and model: 12.8 MB of conversation, ~3M tokens
    max_age_s: float = 600.0  # a prefix untouched this long is taken as evicted by the engine
    # Keys taken from one request, from its start: 1,024 blocks is 256 KB of conversation (about 64k tokens);
    # a longer prompt's tail is neither hashed nor stored, so one huge prompt cannot churn the index.
    max_keys_per_request: int = 1024
    # A worker at or above this utilisation (queue against capacity, or KV-cache use), or more than
    # imbalance_margin above the least loaded candidate, gets no prefix credit: a hot prefix must not pile
    # every request onto one worker; the load scorer then decides. 0.3 kept the simulated pool within
    # 1.4x (bench/prefix_sim.py); 0.2 gave up more cache hits, 0.4 more balance.
    busy_threshold: float = 0.8
    imbalance_margin: float = 0.3
    # The same in requests, for pools whose declared capacity dwarfs their load: a worker holding at least
    # this many times the requests of the least busy candidate (plus one) gets no prefix credit either.
    imbalance_ratio: float = 3.0
    # Tenants never share a cached prefix: each request gets its tenant's cache salt (vLLM's cache_salt), so
    # neither the router's prefix index nor a worker's engine matches one tenant's prompt against another's.
    # Costs the hits that a system prompt shared across tenants would have had.
    isolate_tenants: bool = False

    def __post_init__(self) -> None:
        if self.block_bytes < 16:
            raise ValueError("prefix.block_bytes: must be at least 16")
        if self.max_keys < 1 or self.max_keys_per_worker < 1 or self.max_keys_per_request < 1:
            raise ValueError(
                "prefix.max_keys, prefix.max_keys_per_worker and prefix.max_keys_per_request: must be at least 1"
            )
        if self.max_age_s <= 0:
            raise ValueError("prefix.max_age_s: must be positive")
        if not 0.0 < self.busy_threshold <= 1.0:
            raise ValueError("prefix.busy_threshold: must be in (0, 1]")
        if not 0.0 < self.imbalance_margin <= 1.0:
            raise ValueError("prefix.imbalance_margin: must be in (0, 1]")
        if self.imbalance_ratio < 1.0:
            raise ValueError("prefix.imbalance_ratio: must be at least 1")


@dataclass
class RouterConfig:
    listen: str = "127.0.0.1:50051"
    router_id: str = field(default_factory=socket.gethostname)
    # Workers check their load this often and report it when it changed; one whose load stays the same sends
    # a heartbeat every heartbeat_interval_ms instead (at least report_interval_ms). A worker silent for
    # `missed_reports` heartbeat intervals leaves rotation, and its lease ends.
    report_interval_ms: PositiveInt = 1000
    heartbeat_interval_ms: PositiveInt = 3000
    missed_reports: PositiveInt = 3
    # A worker must say hello this soon after opening its registration stream.
    hello_timeout_s: PositiveFloat = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # An attempt that has sent nothing after this long (or after its share of the caller's deadline)
    # is abandoned for the next candidate.
    first_chunk_timeout_s: PositiveFloat = 60.0
    # A worker's chat stream that sends nothing this long (its first token included) has stalled: the
    # attempt fails over, or migrates once the answer started. Workers send every token; 0 = off.
    # Cloud providers have their own (ProviderConfig.stall_timeout_s).
    worker_stall_timeout_s: NonNegativeFloat = 5.0
    # Continuing a broken answer on another backend (router.config.migration).
    migration: MigrationConfig = field(default_factory=MigrationConfig)
    strategy: str = "composite"
    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # strategy -> scorer -> weight
    providers: list[ProviderConfig] = field(default_factory=list)
    # Aliases ("fast", "smart") -> ordered entries: "backend/model", a model id, or a backend id.
    routes: dict[str, list[str]] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)  # task tag -> route alias
    prices: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> Price fields
    prefix: PrefixConfig = field(default_factory=PrefixConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)  # how many candidates a request scores (config.pool)
    health_interval_s: PositiveFloat = 30.0
    circuit_failure_threshold: PositiveInt = 5
    circuit_cooldown_s: PositiveFloat = 30.0
    # Accounting (see router.accounting_config): API keys, usage ledger, budgets, response cache, metrics.
    keys: list[ApiKey] = field(default_factory=list)  # none: open, every caller is tenant "local"
    keys_file: str = ""
    # SQLite path or postgresql:// URL (may hold a password: not in repr); "" = the default file; "off"
    usage_db: str = field(default="", repr=False)
    ledger_queue_size: PositiveInt = (
        10_000  # records waiting to be written; when full the oldest are dropped, counted
    )
    # At most one ledger transaction per interval: what a SIGKILL can lose is this long's records at most,
    # plus the batch being written.
    ledger_flush_s: PositiveFloat = 0.5
    # A tenant's refused Admin calls recorded one by one (log, audit ledger) per minute; the rest of that minute
    # are folded into one record with their count (router.accounting.refusal_folding). All are counted in metrics.
    audit_refused_per_minute: PositiveInt = 10
    budgets: dict[str, Budget] = field(default_factory=dict)  # tenant (or "*") -> limits
    budget_low_fraction: Fraction = 0.8  # above this share of a limit, prefer cheaper backends
    cache: CacheConfig = field(default_factory=CacheConfig)
    # Per-tenant rate and concurrency limits, and how many uploads are buffered at once (router.config.limits).
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    # The admission queue (fair between tenants) and local-first placement (router.config.admission).
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    local_first: LocalFirstConfig = field(default_factory=LocalFirstConfig)
    # Caps on what one request may hold (core.input_limits); audio is held in memory so another worker can
    # retry it.
    input: InputLimits = field(default_factory=InputLimits)
    metrics_listen: str = ""  # host:port for Prometheus /metrics; "" = off
    # On SIGTERM: NOT_SERVING and a drain (shutdown.drain_s) that serves what still arrives, then new
    # client calls refused and those in flight given this long to finish.
    grace_seconds: NonNegativeFloat = 30.0
    shutdown: ShutdownConfig = field(default_factory=ShutdownConfig)
    # A router just started holds a request for a model no backend serves yet this long at most (never past
    # its deadline) while workers register; its readiness stays NOT_SERVING until one has. 0: no wait.
    startup_wait_s: NonNegativeFloat = 10.0
    # The OpenAI-compatible HTTP door (router.services.http): host:port; "" = off. Off loopback it needs
    # API keys, like the gRPC listener.
    http_listen: str = ""
    # Largest JSON body the door reads (chat with inline images, embeddings); larger gets HTTP 413.
    # Transcription uploads are bounded by input.max_audio_bytes instead.
    http_max_body_bytes: PositiveInt = 32 << 20
    # The most choices (`n`) one chat may ask of the door; each is a request of its own to a backend.
    http_max_choices: PositiveInt = 8
    # With no API keys the door answers only Host values naming loopback (DNS rebinding), and these names.
    http_allowed_hosts: tuple[str, ...] = ()
    # A transcription upload's fields other than the file: how many, and their bytes in all.
    http_max_form_fields: PositiveInt = 32
    http_max_form_bytes: PositiveInt = 64 << 10
    # Security (see router.config.security): TLS, the registry's own port, worker credentials.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    registry_listen: str = ""  # "" = workers register on `listen`
    allow_open: bool = False  # serve a non-loopback address with no API keys or no worker credentials
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    # gRPC: the largest request message the router reads (0: what the input caps allow, input.max_text_bytes +
    # input.max_image_bytes + 1 MiB), and the requests one connection may have open at once.
    grpc_max_receive_bytes: NonNegativeInt = 0
    grpc_max_concurrent_streams: PositiveInt = 256
    # A fixed HTTP/2 window per stream, with gRPC's bandwidth-delay probing off (it pings on a connection's
    # reads: with a thousand workers each reporting once a second that was half of gRPC's CPU in the
    # router). 1 MiB keeps an upload at 20 MB/s over a 50 ms round trip. 0: gRPC's own auto-tuned window.
    grpc_stream_window_bytes: NonNegativeInt = 1 << 20


@dataclass
class ProviderConfig:
    """One cloud (or OpenAI-compatible) backend. `kind` picks its factory in router.backends.factory."""

    name: str  # backend id, unique; e.g. "openai", "anthropic", "deepseek"
    kind: str  # openai | openai_compatible | deepseek | gemini | anthropic
    api_key: str = field(default="", repr=False)  # a secret: never logged, never in status
    api_key_env: str = (
        ""  # the variable api_key is read from ("" for kinds with none): named when it is unset
    )
    base_url: str | None = (
        None  # None: the SDK's default (which honours OPENAI_BASE_URL / ANTHROPIC_BASE_URL)
    )
    chat_models: list[str] = field(default_factory=list)
    embed_models: list[str] = field(default_factory=list)
    transcribe_models: list[str] = field(default_factory=list)
    vision_models: list[str] = field(default_factory=list)  # chat models that accept images
    priority: int = 100  # lower is preferred by the priority/fallback strategies
    enabled: bool = True
    max_concurrency: PositiveInt = 64  # in-flight requests this router keeps open on it
    timeout_s: PositiveFloat = 120.0
    # An answer's status line and headers beyond this fail the attempt (failover): a broken or hostile
    # upstream must not grow the router's memory by never ending its headers.
    max_response_header_bytes: PositiveInt = 64 * 1024
    default_max_tokens: PositiveInt = 1024  # Anthropic requires max_tokens; used when the request has none
    # A chat stream silent this long has stalled (see RouterConfig.worker_stall_timeout_s). 0 = off, the
    # default: reasoning models may think silently for a minute.
    stall_timeout_s: NonNegativeFloat = 0.0
