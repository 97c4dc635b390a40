# syntax=docker/dockerfile:1
# A Modelyard GPU worker: vLLM (chat, embeddings) and faster-whisper (speech-to-text) on CUDA.
#
#   docker build -f deploy/docker/worker.Dockerfile -t modelyard-worker .     (from the repository root)
#   docker run --rm --gpus all --ipc=host -p 50061:50061 -e MODELYARD_ROUTER=router-host:50051 \
#     -v hf-cache:/home/modelyard/.cache modelyard-worker
#
# The worker dials the router; the router dials back the worker's advertised address, so run it where the
# router can reach port 50061 (Kubernetes passes --advertise $(POD_IP):50061, see deploy/k8s/worker.yaml).
#
# vLLM's wheels bring their own CUDA libraries through PyTorch; the base image supplies cuBLAS and cuDNN 9,
# which faster-whisper's CTranslate2 loads from the system. The host needs an NVIDIA driver new enough for
# CUDA_VERSION (or the CUDA forward-compatibility package).
ARG CUDA_VERSION=12.8.1
ARG UV_VERSION=0.8
FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# tini reaps the engine's child processes and forwards SIGTERM, so the worker can drain.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=uv /uv /usr/local/bin/uv
# Ubuntu 22.04 ships Python 3.10; Modelyard needs 3.11, so uv fetches a standalone build.
RUN uv venv --python 3.11 /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY core ./core
COPY gpu_worker ./gpu_worker
COPY clients ./clients
RUN uv pip install --python /opt/venv/bin/python '.[gpu]' \
 && rm -rf /src \
 && useradd --uid 10001 --user-group --home-dir /home/modelyard --create-home modelyard \
 && install -d -o 10001 -g 10001 /home/modelyard/.cache

# Model weights and vLLM's compile caches go under $HOME/.cache; mount a volume there to keep them.
ENV HOME=/home/modelyard \
    HF_HOME=/home/modelyard/.cache/huggingface
WORKDIR /home/modelyard
USER 10001
VOLUME ["/home/modelyard/.cache"]
# 50061: the worker's gRPC service (Worker, grpc.health.v1, reflection), dialled by the router.
EXPOSE 50061

# The worker reads the routers to dial from $MODELYARD_ROUTER (host:port, a comma-separated list, or a name
# with several addresses such as a headless Service) when no --router flag is given.
ENTRYPOINT ["tini", "--", "modelyard", "worker"]
CMD ["--listen", "0.0.0.0:50061"]
