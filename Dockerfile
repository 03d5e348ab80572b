# One image for every Quiver role: `quiver run standalone` by default, or
# `quiver run proxy|coord|querynode|datanode|indexnode` in a cluster (the Helm chart and the
# operator pass the role as arguments).
#
#   docker build -t quiver:0.1.0 .
#   docker run -p 19530:19530 -p 9091:9091 -v quiver-data:/var/lib/quiver quiver:0.1.0

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
# Install into a prefix that the runtime stage copies whole: no compilers or sources there.
RUN pip install --prefix=/install ".[cluster]"

FROM python:3.11-slim
LABEL org.opencontainers.image.title="Quiver" \
      org.opencontainers.image.description="A distributed vector database that speaks the Milvus 2.x protocol"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QUIVER_HOST=0.0.0.0 \
    QUIVER_DATA_DIR=/var/lib/quiver
COPY --from=build /install /usr/local
RUN groupadd --system --gid 10001 quiver \
 && useradd --system --uid 10001 --gid quiver --home-dir /var/lib/quiver --shell /usr/sbin/nologin quiver \
 && mkdir -p /var/lib/quiver /etc/quiver \
 && chown quiver:quiver /var/lib/quiver
WORKDIR /var/lib/quiver
VOLUME ["/var/lib/quiver"]
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
EXPOSE 19530 9091
# The proxy (and standalone) answer GET /healthz on the HTTP port; python is the only client here.
# Other roles serve no HTTP: run them with `docker run --no-healthcheck` (Kubernetes ignores this
# instruction and uses the chart's probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('QUIVER_HTTP_PORT', '9091'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["quiver"]
CMD ["run", "standalone"]
