#!/usr/bin/env bash
# Docker smoke (not part of .ci/run: it needs a Docker engine and takes minutes): build the image,
# run `sandbox --days 1` and `run` in it, watch the health check, try the exit codes that must
# stop a restart loop, check the Compose files, run compose.yaml's two personas side by side
# and compose.fleet.yaml's shards. Prints what it saw (image size, RSS, health, exit codes) and
# exits non-zero if a must-have failed.
#
#   tests/docker/smoke.sh                  # uses the Dockerfile's base image if Docker has it
#   SMOKE_DEBOOTSTRAP=1 tests/docker/smoke.sh
#       # no registry reachable: builds a stand-in for the base from Debian packages with
#       # debootstrap and tags it with the base's name. The stand-in trusts this machine's CA
#       # bundle (and tells pip to), so pip works behind a TLS-inspecting proxy.
#
# `run` talks to a Glimpse emulator on 127.0.0.1 (tests/docker/emulator.py, from the repo's
# .venv) through --network host: no traffic leaves the machine. Needs: docker, python venv at
# .venv (or PYTHON=...), and for SMOKE_DEBOOTSTRAP debootstrap. Run as root (or docker group).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
TAG=${SMOKE_TAG:-glimpse-agent:smoke}
BASE=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | head -n 1)
# The smoke's configs say `[ops] unhealthy_after_minutes = UNHEALTHY_MINUTES` and
# `[daemon] heartbeat_minutes = HEARTBEAT_MINUTES`: an idle daemon learns that Glimpse is gone
# at its next heartbeat, so health must flip at most HEARTBEAT + UNHEALTHY minutes (plus the
# health check's interval and retries) after Glimpse goes away.
UNHEALTHY_MINUTES=${SMOKE_UNHEALTHY_MINUTES:-1}
HEARTBEAT_MINUTES=${SMOKE_HEARTBEAT_MINUTES:-1}
UNHEALTHY_WAIT=${SMOKE_UNHEALTHY_WAIT:-300}   # seconds to wait for health to flip after an outage
WORK=$(mktemp -d /tmp/glimpse-smoke.XXXXXX)
COMPOSE=()
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then COMPOSE=(docker-compose); fi
FAILED=0
EMU_PID=""

say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; FAILED=1; }
cleanup() {
    docker rm -f -v smoke-aurora smoke-exit3 smoke-exit5 >/dev/null 2>&1 || true
    if [ ${#COMPOSE[@]} -gt 0 ] && [ -f "$WORK/compose/compose.yaml" ]; then
        (cd "$WORK/compose" && "${COMPOSE[@]}" -p glimpsesmoke down -v >/dev/null 2>&1) || true
        (cd "$WORK/compose" && "${COMPOSE[@]}" -p glimpsesmokefleet -f compose.fleet.yaml \
            -f compose.fleet.smoke.yaml down -v >/dev/null 2>&1) || true
    fi
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1"; }
rss_kib() {  # the container's first process and its children (init: true puts tini first)
    local pid; pid=$(docker inspect -f '{{.State.Pid}}' "$1")
    ps -o rss= -p "$pid" --ppid "$pid" | awk '{s += $1} END {print s}'
}
wait_for() {  # wait_for SECONDS COMMAND...: true once COMMAND succeeds
    local until=$((SECONDS + $1)); shift
    while [ $SECONDS -lt $until ]; do "$@" && return 0; sleep 1; done
    return 1
}

# ---- 0. the base image
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    [ "${SMOKE_DEBOOTSTRAP:-0}" = 1 ] || { say "no $BASE image: set SMOKE_DEBOOTSTRAP=1"; exit 2; }
    say "== building a stand-in for $BASE with debootstrap"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$WORK/rootfs/etc/pip.conf"
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    tar -C "$WORK/rootfs" -c . | docker import -c 'CMD ["python3"]' - "$BASE" >/dev/null
    rm -rf "$WORK/rootfs"
fi

# ---- 1. build
say "== docker build -t $TAG ."
start=$SECONDS
docker build -q -t "$TAG" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
say "built in $((SECONDS - start)) s; image size $(docker image inspect -f '{{.Size}}' "$TAG" \
    | awk '{printf "%.0f MB", $1/1e6}') (base $(docker image inspect -f '{{.Size}}' "$BASE" \
    | awk '{printf "%.0f MB", $1/1e6}'))"
leftovers=$(docker run --rm --entrypoint sh "$TAG" -c \
    'ls -d /src /wheels /root/.cache /opt/glimpse-agent/bin/pip 2>/dev/null; id -u' | tr '\n' ' ')
say "final stage: leftovers and uid: $leftovers"
[ "$leftovers" = "10001 " ] || fail "the final stage holds build leftovers or runs as root"

# ---- 2. sandbox from an empty folder, nothing mounted
say "== docker run --rm $TAG sandbox --days 1"
start=$SECONDS
if docker run --rm --no-healthcheck "$TAG" sandbox --days 1 >"$WORK/sandbox.log" 2>&1 \
        && grep -q "All checks passed" "$WORK/sandbox.log"; then
    say "sandbox: $((SECONDS - start)) s wall; $(grep -E '^(Simulated|All checks)' "$WORK/sandbox.log" | tr '\n' ' ')"
else
    tail -20 "$WORK/sandbox.log"; fail "sandbox in the image"
fi

# ---- 3. run against an emulated Glimpse on loopback, with the documented layout
"$PYTHON" tests/docker/emulator.py "$WORK/emu" --agent aurora --agent kuro >"$WORK/emu.log" 2>&1 &
EMU_PID=$!
wait_for 20 test -s "$WORK/emu/url" || { cat "$WORK/emu.log"; exit 1; }
URL=$(cat "$WORK/emu/url")
persona_config() {  # persona_config NAME: the config of docs/deploy.md, offline image + templates
    cat <<EOF
persona   = "personas/$1.toml"
state_dir = "\${STATE_DIRECTORY:-/var/lib/glimpse-agent/$1}"

[glimpse]
base_url     = "$URL"
api_key_file = "\${CREDENTIALS_DIRECTORY:-/etc/glimpse-agent/credentials/$1}/glimpse"

[images]
order = ["local"]

[captions]
order = ["template"]

[daemon]
heartbeat_minutes = $HEARTBEAT_MINUTES

[ops]
unhealthy_after_minutes = $UNHEALTHY_MINUTES
EOF
}
mkdir -p "$WORK/compose/personas" "$WORK/compose/secrets/aurora" "$WORK/compose/secrets/kuro"
cp src/glimpse_agent/personas/aurora.toml src/glimpse_agent/personas/kuro.toml "$WORK/compose/personas/"
for p in aurora kuro; do
    persona_config "$p" >"$WORK/compose/$p.toml"
    cp "$WORK/emu/$p.key" "$WORK/compose/secrets/$p/glimpse"
done
# Compose lists an image-backend secret for each persona; unused by these configs, but present.
printf 'unused\n' >"$WORK/compose/secrets/aurora/openai"
printf 'unused\n' >"$WORK/compose/secrets/kuro/huggingface"
chown -R 10001:10001 "$WORK/compose/secrets" && chmod 0400 "$WORK"/compose/secrets/*/*
C="$WORK/compose"

say "== docker run -d (run), health checked every 5 s"
docker run -d --name smoke-aurora --network host \
    --health-interval 5s --health-start-period 5s --health-retries 2 --health-timeout 20s \
    -v "$C/aurora.toml:/etc/glimpse-agent/agent.toml:ro" -v "$C/personas:/etc/glimpse-agent/personas:ro" \
    -v "$C/secrets/aurora/glimpse:/run/secrets/glimpse:ro" "$TAG" >/dev/null
if wait_for 60 sh -c "docker logs smoke-aurora 2>&1 | grep -q daemon_ready"; then
    say "ready: $(docker logs smoke-aurora 2>&1 | grep -m1 daemon_ready | cut -c1-120)"
else
    docker logs smoke-aurora 2>&1 | tail -20; fail "run did not get ready"
fi
sleep 20
say "RSS after 20 s idle: $(rss_kib smoke-aurora) KiB; docker stats: $(docker stats --no-stream \
    --format '{{.MemUsage}}' smoke-aurora)"
has_health=0
docker run --rm --no-healthcheck "$TAG" health --help >/dev/null 2>&1 && has_health=1
if [ $has_health = 1 ]; then
    if wait_for 60 sh -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' smoke-aurora)\" = healthy ]"; then
        say "health: healthy while Glimpse answers"
    else
        fail "health never became healthy: $(health smoke-aurora)"
    fi
    kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null || true; EMU_PID=""
    start=$SECONDS
    if wait_for "$UNHEALTHY_WAIT" sh -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' smoke-aurora)\" = unhealthy ]"; then
        say "health: unhealthy $((SECONDS - start)) s after Glimpse went away"
    else
        fail "health still $(health smoke-aurora) $UNHEALTHY_WAIT s after Glimpse went away"
    fi
    say "last health output: $(docker inspect -f '{{range .State.Health.Log}}{{.ExitCode}}:{{.Output}}{{end}}' \
        smoke-aurora | tail -c 300 | tr '\n' ' ')"
else
    fail "no \`glimpse-agent health\` command in this build (the HEALTHCHECK runs it); the container reports $(health smoke-aurora)"
fi
start=$SECONDS
docker stop -t 40 smoke-aurora >/dev/null
say "docker stop: $((SECONDS - start)) s, exit code $(docker inspect -f '{{.State.ExitCode}}' smoke-aurora)"
[ "$(docker inspect -f '{{.State.ExitCode}}' smoke-aurora)" = 0 ] || fail "SIGTERM did not end in exit 0"

# ---- 4. the exit codes a restart policy must not loop on
say "== exit codes"
exit_of() {  # exit_of NAME LOG DOCKER-RUN-ARGS...: "CODE after N restarts" under on-failure:5
    # The Compose file's policy: a code a restart cannot fix must end in `Exited (N)` after at
    # most 5 quick restarts, not loop for ever. "none" if it is still up after 120 s.
    local name=$1 log=$2 start=$SECONDS; shift 2
    docker run -d --name "$name" --no-healthcheck --network host --restart on-failure:5 "$@" "$TAG" >/dev/null
    if wait_for 120 sh -c "[ \"\$(docker inspect -f '{{.State.Status}}' $name)\" = exited ]"; then
        echo "$(docker inspect -f '{{.State.ExitCode}} after {{.RestartCount}} restarts' "$name"), $((SECONDS - start)) s"
    else
        echo "none (still $(docker inspect -f '{{.State.Status}} after {{.RestartCount}} restarts' "$name") after 120 s)"
    fi
    docker logs "$name" >"$log" 2>&1
    docker rm -f -v "$name" >/dev/null
}
last_line() { grep -v '^\s*$' "$1" | tail -n 1 | cut -c1-400; }
mkdir -p "$WORK/rootonly" && chmod 0700 "$WORK/rootonly"
code=$(exit_of smoke-exit3 "$WORK/exit3.log" \
    -v "$C/aurora.toml:/etc/glimpse-agent/agent.toml:ro" -v "$C/personas:/etc/glimpse-agent/personas:ro" \
    -v "$C/secrets/aurora/glimpse:/run/secrets/glimpse:ro" -v "$WORK/rootonly:/var/lib/glimpse-agent")
say "state dir owned by root, 0700: exit $code (want 3): $(last_line "$WORK/exit3.log")"
[ "${code%% *}" = 3 ] || fail "an unwritable state dir must be exit 3 (a restart cannot fix it)"
grep -q Traceback "$WORK/exit3.log" && fail "a traceback for an unwritable state dir"
[ -n "$EMU_PID" ] && { kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null || true; EMU_PID=""; }
printf 'glm_refused_0000000000000000\n' >"$WORK/bogus" && chown 10001 "$WORK/bogus" && chmod 0400 "$WORK/bogus"
"$PYTHON" tests/docker/emulator.py "$WORK/emu2" --agent aurora --agent kuro >"$WORK/emu2.log" 2>&1 &
EMU_PID=$!
wait_for 20 test -s "$WORK/emu2/url" || { cat "$WORK/emu2.log"; exit 1; }
sed "s#$URL#$(cat "$WORK/emu2/url")#" "$C/aurora.toml" >"$WORK/aurora-emu2.toml"
code=$(exit_of smoke-exit5 "$WORK/exit5.log" \
    -v "$WORK/aurora-emu2.toml:/etc/glimpse-agent/agent.toml:ro" -v "$C/personas:/etc/glimpse-agent/personas:ro" \
    -v "$WORK/bogus:/run/secrets/glimpse:ro")
say "refused Glimpse key: exit $code (want 5): $(last_line "$WORK/exit5.log")"
[ "${code%% *}" = 5 ] || fail "a refused key must be exit 5 (a restart cannot fix it)"
grep -q Traceback "$WORK/exit5.log" && fail "a traceback for a refused key"

# ---- 5. Compose: the file as shipped, then its two personas side by side
if [ ${#COMPOSE[@]} -eq 0 ]; then
    fail "neither \`docker compose\` nor docker-compose is installed"
else
    cp compose.yaml "$C/compose.yaml"
    (cd "$C" && "${COMPOSE[@]}" config -q) && say "${COMPOSE[*]} config: compose.yaml valid" \
        || fail "${COMPOSE[*]} config on compose.yaml"
    "${COMPOSE[@]}" -f compose.fleet.yaml config -q && say "${COMPOSE[*]} config: compose.fleet.yaml valid" \
        || fail "${COMPOSE[*]} config on compose.fleet.yaml"
    sed -i "s#$URL#$(cat "$WORK/emu2/url")#" "$C/aurora.toml" "$C/kuro.toml"
    for p in aurora kuro; do
        chmod 0600 "$C/secrets/$p/glimpse" && cp "$WORK/emu2/$p.key" "$C/secrets/$p/glimpse"
    done
    chmod 0400 "$C"/secrets/*/glimpse; chown 10001 "$C"/secrets/*/glimpse
    cat >"$C/compose.smoke.yaml" <<EOF
services:
  aurora: {image: $TAG, network_mode: host}
  kuro: {image: $TAG, network_mode: host}
EOF
    (cd "$C" && "${COMPOSE[@]}" -p glimpsesmoke -f compose.yaml -f compose.smoke.yaml up -d --no-build) \
        >"$WORK/compose.log" 2>&1 || { cat "$WORK/compose.log"; fail "compose up"; }
    sleep 15
    for p in aurora kuro; do
        cid=$(cd "$C" && "${COMPOSE[@]}" -p glimpsesmoke -f compose.yaml -f compose.smoke.yaml ps -q "$p")
        state=$(docker inspect -f '{{.State.Status}} restarts={{.RestartCount}} policy={{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}' "$cid")
        vol=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/var/lib/glimpse-agent"}}{{.Name}}{{end}}{{end}}' "$cid")
        secrets=$(docker exec "$cid" ls /run/secrets | tr '\n' ' ')
        ready=$(docker logs "$cid" 2>&1 | grep -c daemon_ready || true)
        say "compose $p: $state, state volume $vol, /run/secrets: $secrets, RSS $(rss_kib "$cid") KiB, daemon_ready x$ready"
        [ "$ready" -ge 1 ] || { docker logs "$cid" 2>&1 | tail -5; fail "compose $p not ready"; }
    done
    (cd "$C" && "${COMPOSE[@]}" -p glimpsesmoke down -v >/dev/null 2>&1) || true

    # ---- 6. compose.fleet.yaml: shard-a runs both personas in one process; shard-b has no
    # config at all (exit 2), which on-failure:5 must give up on.
    say "== compose.fleet.yaml"
    cp compose.fleet.yaml "$C/compose.fleet.yaml"
    mkdir -p "$C/fleet/shard-a/personas" "$C/fleet/shard-b"
    cp "$C"/personas/*.toml "$C/fleet/shard-a/personas/"
    for p in aurora kuro; do
        sed -e "s#^state_dir = .*#state_dir = \"\${STATE_DIRECTORY:-/var/lib/glimpse-agent}/$p\"#" \
            -e "s#^api_key_file = .*#api_key_file = \"/run/secrets/$p.glimpse\"#" \
            "$C/$p.toml" >"$C/fleet/shard-a/$p.toml"
    done
    cat >"$C/compose.fleet.smoke.yaml" <<EOF
services:
  shard-a:
    image: $TAG
    network_mode: host
    volumes:
      - ./secrets/aurora/glimpse:/run/secrets/aurora.glimpse:ro
      - ./secrets/kuro/glimpse:/run/secrets/kuro.glimpse:ro
  shard-b: {image: $TAG, network_mode: host}
EOF
    FLEET=("${COMPOSE[@]}" -p glimpsesmokefleet -f compose.fleet.yaml -f compose.fleet.smoke.yaml)
    (cd "$C" && "${FLEET[@]}" up -d --no-build) >"$WORK/fleet.log" 2>&1 \
        || { cat "$WORK/fleet.log"; fail "compose.fleet.yaml up"; }
    a=$(cd "$C" && "${FLEET[@]}" ps -q shard-a); b=$(cd "$C" && "${FLEET[@]}" ps -q shard-b)
    if wait_for 60 sh -c "docker exec $a glimpse-agent fleet status 2>/dev/null | grep -q running"; then
        sleep 5
        say "shard-a: $(docker inspect -f '{{.State.Status}} restarts={{.RestartCount}}' "$a"), RSS $(rss_kib "$a") KiB; fleet status:"
        docker exec "$a" glimpse-agent fleet status | cut -c1-120
    else
        docker logs "$a" 2>&1 | tail -5 | cut -c1-400
        fail "compose.fleet.yaml: shard-a never ran its personas ($(docker inspect -f '{{.State.Status}} exit={{.State.ExitCode}} restarts={{.RestartCount}}' "$a"))"
    fi
    # The healthcheck's own command, run now rather than after its 2 min start period.
    mapfile -t check < <(docker inspect -f '{{json .Config.Healthcheck.Test}}' "$a" \
        | "$PYTHON" -c 'import json, sys; print("\n".join(json.load(sys.stdin)[1:]))')
    if docker exec "$a" "${check[@]}"; then say "shard-a healthcheck command: exit 0"
    else fail "shard-a's healthcheck command says unhealthy"; fi
    if wait_for 120 sh -c "[ \"\$(docker inspect -f '{{.State.Status}}' $b)\" = exited ]"; then
        say "shard-b (no configs): $(docker inspect -f 'exit {{.State.ExitCode}} after {{.RestartCount}} restarts' "$b"): $(docker logs "$b" 2>&1 | tail -n 1 | cut -c1-200)"
        [ "$(docker inspect -f '{{.State.ExitCode}}' "$b")" = 2 ] || fail "an empty fleet folder must be exit 2"
    else
        fail "shard-b with no configs still $(docker inspect -f '{{.State.Status}} after {{.RestartCount}} restarts' "$b") after 120 s"
    fi
fi

if [ $FAILED = 0 ]; then say "SMOKE PASSED"; else say "SMOKE FAILED"; fi
exit $FAILED
