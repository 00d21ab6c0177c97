# The API image; Redis runs as its own service (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bandits ./bandits
COPY clustering ./clustering
COPY service ./service
COPY cli ./cli
RUN pip install . && useradd --system --uid 10001 banditrec
USER banditrec

ENV BANDITREC_HOST=0.0.0.0 BANDITREC_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["banditrec", "serve"]
