# One sw2 bundle as an HTTP service (sw2 serve): ONNX Runtime backend, API key from the environment.
#
#   sw2 train examples/mnist.yaml --out runs/mnist && sw2 export runs/mnist --spec examples/mnist.yaml
#   docker build --platform linux/amd64 --build-arg BUNDLE=runs/mnist -t sw2-mnist .
#   docker run -p 8000:8000 -e SW2_API_KEY=$(openssl rand -hex 32) sw2-mnist
#
# The image holds sw2, the packages serving needs and the bundle; nothing is downloaded when it starts.

# The base, pinned by digest: python:3.11-slim-bookworm (Python 3.11.16, Debian 12) as Docker Hub built it on
# 25 Aug 2026 (its index digest, from docker-library/repo-info, repos/python/remote/3.11-slim-bookworm.md).
# To move to a newer build: `docker buildx imagetools inspect python:3.11-slim-bookworm` prints the index
# digest ("Digest: sha256:..."): put it below, rebuild and run the tests. Build for linux/amd64: the lock
# holds the hashes of the linux x86_64 wheels (on an arm64 machine, pip refuses the others).
FROM python:3.11-slim-bookworm@sha256:fe556eaffd0d96abd8685b83bb8a69addd0dc730fa193669a7df0d49ddcfac02

# What serving imports and nothing else, every package pinned with its wheel's hash (deploy/lock.py wrote the
# lock; torch is the CPU build, as pyproject.toml pins it); then sw2 itself without its dependencies, so the
# training-only ones (matplotlib, tensorboard, captum) never enter the image.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/sw2
COPY deploy/requirements-serve.txt ./
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements-serve.txt
COPY pyproject.toml README.md ./
COPY sw2 ./sw2
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && rm -rf build sw2.egg-info

# The bundle to serve (a folder that `sw2 train` wrote, with the model.onnx of `sw2 export`): only the files
# serving reads, not its report, plots, TensorBoard logs or samples. A name ending in [x] is copied if the
# bundle has it (BuildKit copies a pattern that matches nothing as nothing): an older bundle may lack it.
ARG BUNDLE=runs/model
COPY ${BUNDLE}/model.safetensors ${BUNDLE}/model.json ${BUNDLE}/preprocess.json ${BUNDLE}/spec.yaml \
     ${BUNDLE}/model.onnx ${BUNDLE}/export.jso[n] ${BUNDLE}/metrics.jso[n] ${BUNDLE}/fingerprint.jso[n] \
     ${BUNDLE}/reference.jso[n] /bundle/

# A user without a home to write to: the key comes from SW2_API_KEY (a Kubernetes Secret), never a file.
RUN useradd --system --uid 10001 --no-create-home sw2
USER 10001
ENV HOME=/tmp PYTHONUNBUFFERED=1

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["sw2", "serve", "/bundle", "--host", "0.0.0.0", "--port", "8000", "--backend", "onnx"]
