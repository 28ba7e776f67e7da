# glimpse-agent: one container per persona.
#   docker build -t glimpse-agent .
#   docker run -d --name aurora --restart unless-stopped \
#     -v $PWD/agent.toml:/config/agent.toml:ro -v $PWD/personas:/config/personas:ro \
#     -v $PWD/secrets/glimpse_api_key:/run/secrets/glimpse_api_key:ro \
#     -v aurora-state:/state glimpse-agent
# (with Compose, a `secrets:` entry mounts the same file at the same path)
# In agent.toml: state_dir = "/state"; [glimpse] api_key_file = "/run/secrets/glimpse_api_key"
# The key file must be readable by uid 10001 (the image's user) and by no one else.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/state/hf-cache

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
RUN pip install -c constraints.txt . \
 && useradd --system --uid 10001 --home-dir /state --shell /usr/sbin/nologin glimpse \
 && mkdir -p /state /config \
 && chown glimpse:glimpse /state \
 && chmod 0700 /state

USER glimpse
VOLUME ["/state"]
STOPSIGNAL SIGTERM
# Healthy while the daemon's loop makes progress: its heartbeat file (JSON, rewritten every
# 30 s) was last healthy under 10 minutes ago and does not say "stuck" (an action running on
# past its deadline).
HEALTHCHECK --interval=5m --timeout=10s --start-period=2m \
  CMD ["python", "-c", "import sys; from glimpse_agent.notify import heartbeat_healthy; sys.exit(0 if heartbeat_healthy('/state/heartbeat') else 1)"]
ENTRYPOINT ["glimpse-agent"]
CMD ["run", "-c", "/config/agent.toml"]
