# The OpenZoo hub (server extra). Build: docker build -t openzoo .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/openzoo

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY client ./client
COPY migrations ./migrations
RUN pip install -e '.[server]' && useradd --system --home /srv/openzoo zoo \
    && mkdir -p /var/lib/openzoo && chown zoo /var/lib/openzoo

USER zoo
ENV ZOO_HOST=0.0.0.0 ZOO_PORT=8000 ZOO_DATA_DIR=/var/lib/openzoo
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
# `zoo serve` runs the Alembic migrations, then uvicorn.
CMD ["zoo", "serve"]
