# onnxplain for GPU deployment: onnxruntime-gpu on CUDA 13 + cuDNN 9 (what its CUDA provider links against).
# Runs on CPU-only hosts too (the provider in use is reported by GetModel and logged at start-up).
#   docker build -t onnxplain .
#   docker run --gpus all -p 50051:50051 -v $PWD/my-models:/models onnxplain
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Ubuntu's python3 is 3.12; distribution packages are versioned by the base image's snapshot.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
# Dependencies first, so code changes reuse the cached layer.
COPY pyproject.toml README.md ./
COPY clients/python ./clients/python
COPY service ./service
# VERIFY=1 (the default) adds EVA: PyTorch (CUDA build), onnx2torch and auto_LiRPA, whose only release on the
# index pins torch<1.13 and is installed without its pins (service/verify/lirpa_compat.py makes it run).
# VERIFY=0 gives a smaller image without verified methods.
ARG VERIFY=1
# ".[verify]" is this project (a path, with an extra), not an unpinned package from the index.
# hadolint ignore=DL3013
RUN if [ "$VERIFY" = "1" ]; then \
        pip install --no-compile ".[verify]" && pip install --no-compile --no-deps "auto_LiRPA==0.3"; \
    else \
        pip install --no-compile .; \
    fi

# The bundled demo models; mount your own repository over /models.
COPY models /models

RUN groupadd --system --gid 10001 onnxplain \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent onnxplain
USER 10001:10001

ENV ONNXPLAIN_HOST=0.0.0.0 \
    ONNXPLAIN_PORT=50051 \
    ONNXPLAIN_MODELS_DIR=/models \
    ONNXPLAIN_DEVICE=auto \
    ONNXPLAIN_WORKERS=2 \
    ONNXPLAIN_MAX_MESSAGE_MB=64 \
    ONNXPLAIN_LOG_LEVEL=INFO \
    ONNXPLAIN_SHUTDOWN_GRACE_S=8
# 9464: Prometheus metrics, when ONNXPLAIN_METRICS_PORT=9464 is set (off by default; keep it private).
EXPOSE 50051 9464
# Docker's default stop timeout is 10 s: the server's grace must end before the SIGKILL that follows it.
STOPSIGNAL SIGTERM

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["onnxplain", "health"]

ENTRYPOINT ["onnxplain"]
CMD ["serve"]
