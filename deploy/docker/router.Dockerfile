# syntax=docker/dockerfile:1
# The Modelyard router: cloud providers and the worker registry, no engines.
#
#   docker build -f deploy/docker/router.Dockerfile -t modelyard-router .     (from the repository root)
#   docker run --rm -p 50051:50051 -p 9090:9090 -e OPENAI_API_KEY modelyard-router
FROM python:3.11-slim

# The embedded usage database lives under $XDG_DATA_HOME/modelyard; mount a volume there to keep it.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XDG_DATA_HOME=/var/lib/modelyard

WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY core ./core
COPY router ./router
COPY gpu_worker ./gpu_worker
COPY clients ./clients
# No extras: the router never loads vLLM or faster-whisper.
RUN pip install . \
 && rm -rf /src \
 && useradd --system --uid 10001 --user-group --home-dir /home/modelyard --create-home modelyard \
 && install -d -o 10001 -g 10001 /var/lib/modelyard

WORKDIR /home/modelyard
USER 10001
VOLUME ["/var/lib/modelyard"]
# 50051: gRPC (API, worker registration, grpc.health.v1, reflection); 9090: Prometheus metrics.
EXPOSE 50051 9090

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; r = g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')).Check(h.HealthCheckRequest(), timeout=4); sys.exit(r.status != h.HealthCheckResponse.SERVING)"]

ENTRYPOINT ["modelyard", "router"]
CMD ["--listen", "0.0.0.0:50051", "--metrics-listen", "0.0.0.0:9090"]
