# callserver: SIP on 5060 (UDP and TCP), RTP on the configured range.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 callserver
WORKDIR /opt/callserver
COPY pyproject.toml setup.py README.md ./
COPY callserver ./callserver
# gcc builds the media engine's C extension (batched RTP socket I/O), then leaves the image.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . \
    && (cd / && python -c "import callserver.media._rtpio") \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
COPY config ./config
COPY dialplans ./dialplans
COPY prompts ./prompts
RUN mkdir -p var && chown -R callserver:callserver var
USER callserver

EXPOSE 5060/udp 5060/tcp 20000-30000/udp
# Alive: the admin server's /healthz on admin.listen (127.0.0.1:8080, inside the container).
# The slim image has no curl: urlopen raises, and the check fails, on anything but a 2xx.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENV CALLSERVER_SIP__LISTEN='["udp:0.0.0.0:5060","tcp:0.0.0.0:5060"]'
ENTRYPOINT ["callserver"]
CMD ["run", "--config", "config/callserver.yaml"]
