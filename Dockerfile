# glimpse-agent: one container per persona. docs/deploy.md walks through it; compose.yaml runs
# several side by side. By hand:
#   docker build -t glimpse-agent .
#   docker run -d --name aurora --restart on-failure:5 \
#     -v $PWD/aurora.toml:/etc/glimpse-agent/agent.toml:ro \
#     -v $PWD/personas:/etc/glimpse-agent/personas:ro \
#     -v $PWD/secrets/aurora/glimpse:/run/secrets/glimpse:ro \
#     -v aurora-state:/var/lib/glimpse-agent glimpse-agent
# The same agent.toml as under systemd works here: the image sets STATE_DIRECTORY and
# CREDENTIALS_DIRECTORY, so
#   state_dir = "${STATE_DIRECTORY:-/var/lib/glimpse-agent/aurora}"          -> the volume
#   api_key_file = "${CREDENTIALS_DIRECTORY:-/etc/...}/glimpse"              -> /run/secrets/glimpse
# Secret files must be readable by uid 10001 (the image's user) and by no one else.
# The zero-config demo needs nothing mounted:  docker run --rm glimpse-agent sandbox --days 1

# ---- build: the wheel of this project, then it and the dependency versions pinned in
# constraints.txt installed into a venv; only that venv goes on to the final stage.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
RUN python3 -m venv /opt/glimpse-agent \
 && /opt/glimpse-agent/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/glimpse-agent/bin/pip install --constraint constraints.txt /wheels/glimpse_agent-*.whl \
 && /opt/glimpse-agent/bin/pip uninstall --yes pip setuptools \
 && /opt/glimpse-agent/bin/glimpse-agent --help >/dev/null

# ---- final: the base image, the venv, a numeric user, nothing else.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/glimpse-agent/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATE_DIRECTORY=/var/lib/glimpse-agent \
    CREDENTIALS_DIRECTORY=/run/secrets \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/var/lib/glimpse-agent/hf-cache
COPY --from=build /opt/glimpse-agent /opt/glimpse-agent
# A named user for the uid keeps tools that look the uid up (ps, Python's pwd) readable;
# USER stays numeric so the runtime needs no passwd lookup to drop root.
RUN groupadd --system --gid 10001 glimpse \
 && useradd --system --no-log-init --uid 10001 --gid 10001 \
      --home-dir /var/lib/glimpse-agent --no-create-home --shell /usr/sbin/nologin glimpse \
 && mkdir -p /var/lib/glimpse-agent /etc/glimpse-agent \
 && chown 10001:10001 /var/lib/glimpse-agent \
 && chmod 0700 /var/lib/glimpse-agent
USER 10001:10001
WORKDIR /var/lib/glimpse-agent
VOLUME ["/var/lib/glimpse-agent"]
# SIGTERM: the action in flight finishes and the daemon exits within 30 s
# (give `docker stop` / Compose a grace of 40 s).
STOPSIGNAL SIGTERM
# Unhealthy when the loop is stuck, or Glimpse has been unreachable (or nothing could be done)
# for longer than the config allows.
HEALTHCHECK --interval=1m --timeout=20s --start-period=2m --retries=3 \
  CMD ["glimpse-agent", "health", "-c", "/etc/glimpse-agent/agent.toml"]
ENTRYPOINT ["glimpse-agent"]
CMD ["run", "-c", "/etc/glimpse-agent/agent.toml"]
