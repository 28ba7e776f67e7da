#!/usr/bin/env bash
# The systemd half of docs/deploy.md under a real systemd (not part of .ci/run): boots Debian 12
# with systemd as PID 1 in a container, installs this working tree into /opt/glimpse-agent with
# constraints.txt, and follows the doc's steps against a Glimpse emulator on the container's
# loopback: register (the key lands in the credentials folder), verify, check, enable --now,
# status from a root shell, the journal, systemd-analyze security, `systemctl start` while
# Glimpse is down (returns at once: READY=1 comes before Glimpse; warnings keep their journal
# priority), a missing credential (exit 2, the unit stays stopped), a refused key (exit 5, no
# restart), an upgrade, and removal. Prints what it saw; non-zero on a failure.
#
#   tests/docker/systemd_smoke.sh      # needs docker and debootstrap; run as root
#
# The container gets SYS_ADMIN and a few more capabilities (not --privileged), and `/` is made
# a shared mount: systemd hands credentials to a service through a mount it moves into
# /run/credentials, which a private mount (Docker's default) would hide from the service.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
IMAGE=${SMOKE_SYSTEMD_IMAGE:-glimpse-agent-systemd-smoke:bookworm}
NAME=glimpse-systemd-smoke
WORK=$(mktemp -d /tmp/glimpse-systemd-smoke.XXXXXX)
FAILED=0
say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; FAILED=1; }
cleanup() { docker rm -f -v "$NAME" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
vps() { docker exec "$NAME" bash -c "$1"; }

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "== debootstrap: Debian 12 with systemd, python3-venv, jq"
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,jq \
        bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1
    # This machine's CA bundle, so pip works behind a TLS-inspecting proxy too.
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$WORK/rootfs/etc/pip.conf"
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb
    tar -C "$WORK/rootfs" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$IMAGE" >/dev/null
    rm -rf "$WORK/rootfs"
fi
docker run -d --name "$NAME" --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE \
    --cap-add SYS_NICE --cap-add IPC_LOCK --cap-add MKNOD \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw "$IMAGE" /lib/systemd/systemd >/dev/null
sleep 5
vps 'mount --make-rshared /; systemctl is-system-running --wait >/dev/null || true'
say "systemd $(vps 'systemctl --version | head -n 1')"

say "== install (docs/deploy.md, systemd step 1)"
git ls-files -co --exclude-standard | tar -cf "$WORK/src.tar" -T -
docker cp "$WORK/src.tar" "$NAME:/root/src.tar"
docker cp tests/docker/emulator.py "$NAME:/root/emulator.py"
vps 'mkdir -p /usr/local/src/glimpse-agent && tar -C /usr/local/src/glimpse-agent -xf /root/src.tar
python3 -m venv /opt/glimpse-agent
/opt/glimpse-agent/bin/pip install -q -c /usr/local/src/glimpse-agent/constraints.txt /usr/local/src/glimpse-agent
ln -s /opt/glimpse-agent/bin/glimpse-agent /usr/local/bin/glimpse-agent
install -m 0644 /usr/local/src/glimpse-agent/systemd/glimpse-agent@.service /etc/systemd/system/
systemctl daemon-reload
install -d -m 0755 /etc/glimpse-agent /etc/glimpse-agent/personas
install -d -m 0700 /etc/glimpse-agent/credentials
install -m 0644 /usr/local/src/glimpse-agent/personas/aurora.toml /etc/glimpse-agent/personas/
glimpse-agent --version'
vps '(setsid /opt/glimpse-agent/bin/python /root/emulator.py /root/emu >/root/emu.log 2>&1 & echo $! >/root/emu.pid); sleep 4; test -s /root/emu/url'

say "== configure, register, verify, check (steps 2-5; offline images and templates)"
vps 'URL=$(cat /root/emu/url)
cat > /etc/glimpse-agent/aurora.toml <<EOF
persona   = "personas/aurora.toml"
state_dir = "\${STATE_DIRECTORY:-/var/lib/glimpse-agent/aurora}"

[glimpse]
base_url     = "$URL"
api_key_file = "\${CREDENTIALS_DIRECTORY:-/etc/glimpse-agent/credentials/aurora}/glimpse"

[images]
order = ["local"]

[captions]
order = ["template"]
EOF
glimpse-agent register --name aurora --email you@example.com -c /etc/glimpse-agent/aurora.toml
stat -c "key file: %n %a %U" /etc/glimpse-agent/credentials/aurora/glimpse
sleep 1
CODE=$(/opt/glimpse-agent/bin/python -c "import json; print(json.load(open(\"/root/emu/outbox.json\"))[\"you@example.com\"])")
glimpse-agent verify --code "$CODE" -c /etc/glimpse-agent/aurora.toml
glimpse-agent check -c /etc/glimpse-agent/aurora.toml' || fail "register, verify or check"

say "== enable (step 6)"
start=$(date +%s%N)
vps 'systemctl enable --now glimpse-agent@aurora' 2>&1 | grep -v '^Created symlink' || true
say "enable --now returned after $(( ($(date +%s%N) - start) / 1000000 )) ms"
sleep 5
vps 'systemctl is-active glimpse-agent@aurora' || fail "the unit is not active"
vps 'systemctl show glimpse-agent@aurora -p StatusText -p MemoryCurrent -p NRestarts'
vps 'glimpse-agent status -c /etc/glimpse-agent/aurora.toml | head -n 4' || fail "status from a root shell"
vps 'systemd-analyze security glimpse-agent@aurora.service --no-pager | tail -n 1'

say "== logs (step 7)"
vps 'echo "journalctl -p warning: $(journalctl -u glimpse-agent@aurora -p warning -o cat | wc -l) lines"
journalctl -u glimpse-agent@aurora -p warning -o cat | cut -c1-200
journalctl -u glimpse-agent@aurora --since today -o cat \
  | jq -Rr '"'"'fromjson? | select(.persona == "aurora") | [.timestamp[11:19], .level, .event, .job // .backend // ""] | @tsv'"'"' | tail -n 6'

warnings_json=$(vps 'journalctl -u glimpse-agent@aurora -o cat | jq -Rr '"'"'fromjson? | select(.level == "warning" or .level == "error") | .event'"'"' | wc -l')
warnings_journal=$(vps 'journalctl -u glimpse-agent@aurora -p warning -o cat | wc -l')
[ "$warnings_json" -eq 0 ] || [ "$warnings_journal" -ge "$warnings_json" ] \
    || fail "journald keeps no levels: $warnings_json warning lines, -p warning shows $warnings_journal"

say "== Glimpse down: start returns at once (READY=1 early), the journal keeps the warnings"
vps 'kill "$(cat /root/emu.pid)"; sleep 1; systemctl stop glimpse-agent@aurora'
start=$(date +%s%N)
vps 'timeout 60 systemctl start glimpse-agent@aurora' || fail "systemctl start failed or blocked while Glimpse is down"
took=$(( ($(date +%s%N) - start) / 1000000 ))
say "systemctl start with Glimpse down returned after $took ms"
[ "$took" -lt 20000 ] || fail "systemctl start blocked for $took ms while Glimpse is down"
sleep 8
vps 'echo "unit: $(systemctl show glimpse-agent@aurora -p ActiveState -p SubState -p NRestarts | tr "\n" " ")"
echo "STATUS=$(systemctl show glimpse-agent@aurora -p StatusText --value)"'
[ "$(vps 'systemctl is-active glimpse-agent@aurora')" = active ] || fail "the unit is not active while Glimpse is down"
vps 'systemctl show glimpse-agent@aurora -p StatusText --value' | grep -q "waiting for Glimpse" \
    || fail "STATUS= does not say it is waiting for Glimpse"
outage_warnings=$(vps 'journalctl -u glimpse-agent@aurora -p warning -o cat | grep -c startup_retry' || true)
say "journalctl -p warning during the outage: $outage_warnings startup_retry lines; the last:"
vps 'journalctl -u glimpse-agent@aurora -p warning -o json -n 1 | jq -r '"'"'"PRIORITY=\(.PRIORITY) \(.MESSAGE[0:160])"'"'"''
[ "$outage_warnings" -ge 1 ] || fail "journalctl -p warning shows no startup_retry while Glimpse is down"
vps 'echo "glimpse-agent health: $(glimpse-agent health -c /etc/glimpse-agent/aurora.toml)"'

say "== a secret the config names but the unit has no file for"
vps 'cp /etc/glimpse-agent/aurora.toml /root/aurora.toml
printf "\n[images.openai]\napi_key_file = \"\${CREDENTIALS_DIRECTORY:-/etc/glimpse-agent/credentials/aurora}/openai\"\nmodel = \"gpt-image-1.5\"\n" >> /etc/glimpse-agent/aurora.toml
systemctl restart glimpse-agent@aurora || true; sleep 3
echo "unit: $(systemctl show glimpse-agent@aurora -p ActiveState -p ExecMainStatus -p NRestarts | tr "\n" " ")"
journalctl -u glimpse-agent@aurora -n 5 -o cat | grep api_key_file
cp /root/aurora.toml /etc/glimpse-agent/aurora.toml' || fail "missing credential"
[ "$(vps 'systemctl show glimpse-agent@aurora -p ExecMainStatus --value')" = 2 ] \
    || fail "a missing credential must be exit 2"

say "== a Glimpse that refuses the key: exit 5, no restart (RestartPreventExitStatus)"
# A second emulator with another population: the emulator's keys are drawn from a seeded
# generator, so with the first one's population it would hand out the registered key again.
# It knows a new aurora, whose key is installed afterwards.
vps '(setsid /opt/glimpse-agent/bin/python /root/emulator.py /root/emu2 --population 3 --agent aurora >/root/emu2.log 2>&1 & echo $! >/root/emu2.pid); sleep 4; test -s /root/emu2/url
! cmp -s /root/emu2/aurora.key /etc/glimpse-agent/credentials/aurora/glimpse || echo "the second emulator knows the old key"
sed -i "s#$(cat /root/emu/url)#$(cat /root/emu2/url)#" /etc/glimpse-agent/aurora.toml
systemctl restart glimpse-agent@aurora; sleep 20
echo "unit: $(systemctl show glimpse-agent@aurora -p ActiveState -p ExecMainStatus -p NRestarts | tr "\n" " ")"
journalctl -u glimpse-agent@aurora -p err -o cat | grep '"'"'"event": "fatal"'"'"' | tail -n 1 | cut -c1-300'
[ "$(vps 'systemctl show glimpse-agent@aurora -p ExecMainStatus --value')" = 5 ] \
    || fail "a refused key must be exit 5"
# failed, not activating/auto-restart: no restart is pending (RestartSec=30 is longer than the wait)
[ "$(vps 'for p in ActiveState SubState NRestarts; do systemctl show glimpse-agent@aurora -p $p --value; done | tr "\n" " "')" = "failed failed 0 " ] \
    || fail "systemd restarts (or will restart) a unit whose key Glimpse refused"
vps 'install -m 0600 /root/emu2/aurora.key /etc/glimpse-agent/credentials/aurora/glimpse
systemctl reset-failed glimpse-agent@aurora; systemctl start glimpse-agent@aurora; sleep 3
echo "with the right key: $(systemctl is-active glimpse-agent@aurora)"'

say "== upgrade (step 8) and removal (step 9)"
vps 'cd /usr/local/src/glimpse-agent
/opt/glimpse-agent/bin/pip install -q -c constraints.txt --upgrade .
install -m 0644 systemd/glimpse-agent@.service /etc/systemd/system/ && systemctl daemon-reload
systemctl restart "glimpse-agent@*.service" 2>/dev/null || systemctl restart glimpse-agent@aurora
sleep 3; echo "after upgrade: $(systemctl is-active glimpse-agent@aurora)"
systemctl disable --now glimpse-agent@aurora 2>&1 | grep -v "^Removed" || true
systemctl clean --what=state glimpse-agent@aurora
echo "state after clean: $(ls /var/lib/private/glimpse-agent/ | wc -l) folders"' || fail "upgrade or removal"

if [ $FAILED = 0 ]; then say "SYSTEMD SMOKE PASSED"; else say "SYSTEMD SMOKE FAILED"; fi
exit $FAILED
