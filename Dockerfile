# One sw2 bundle as an HTTP service (sw2 serve): ONNX Runtime backend, API key from the environment.
#
#   sw2 train examples/mnist.yaml --out runs/mnist && sw2 export runs/mnist --spec examples/mnist.yaml
#   docker build --build-arg BUNDLE=runs/mnist -t sw2-mnist .
#   docker run -p 8000:8000 -e SW2_API_KEY=$(openssl rand -hex 32) sw2-mnist
#
# The image holds sw2, its serving extras and the bundle; nothing is downloaded when it starts.
FROM python:3.11-slim

# PyTorch's CPU wheel, pinned as pyproject.toml pins it: PyPI's default torch build is the multi-GB CUDA one.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/sw2
COPY pyproject.toml README.md ./
COPY sw2 ./sw2
RUN pip install --no-cache-dir '.[serve,onnx,text]'

# The bundle to serve (a folder that `sw2 train` wrote, with the model.onnx of `sw2 export`).
ARG BUNDLE=runs/model
COPY ${BUNDLE} /bundle

# A user without a home to write to: the key comes from SW2_API_KEY (a Kubernetes Secret), never a file.
RUN useradd --system --uid 10001 --no-create-home sw2
USER 10001
ENV HOME=/tmp PYTHONUNBUFFERED=1

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["sw2", "serve", "/bundle", "--host", "0.0.0.0", "--port", "8000", "--backend", "onnx"]
