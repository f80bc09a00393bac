# callserver: SIP on 5060 (UDP and TCP), RTP on the configured range.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 callserver
WORKDIR /opt/callserver
COPY pyproject.toml README.md ./
COPY callserver ./callserver
RUN pip install --no-cache-dir .
COPY config ./config
COPY dialplans ./dialplans
COPY prompts ./prompts
RUN mkdir -p var && chown -R callserver:callserver var
USER callserver

EXPOSE 5060/udp 5060/tcp 20000-30000/udp
ENV CALLSERVER_SIP__LISTEN='["udp:0.0.0.0:5060","tcp:0.0.0.0:5060"]'
ENTRYPOINT ["callserver"]
CMD ["run", "--config", "config/callserver.yaml"]
