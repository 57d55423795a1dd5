#!/usr/bin/env bash
# ssm-streamd under a real systemd: boots Debian 12 in a container and checks, through systemctl
# and the control socket, what an operator relies on:
#
#   scripts/systemd-container-test.sh [--cache DIR]
#
#   1. a minimal Debian 12 root (debootstrap: systemd, dbus and the libraries ssm-streamd links),
#      cached in DIR (default /var/cache/ssm-stream/bookworm; about 3 minutes and 260 MB the first
#      time, from Debian's mirror); a throw-away copy of it is what boots;
#   2. scripts/install.sh --destdir into it (the release binaries this checkout built, and the
#      Swift runtime libraries they load), a configuration that paces a looped file through the
#      lowpass and writes the result, and the template unit's instance for a second one;
#   3. boots it (systemd-nspawn --keep-unit -b) and checks: `systemctl enable --now ssm-streamd` → active
#      after READY=1; `ssm-stream status` over the socket; `systemctl reload` with a new model →
#      swapped in place, no frame lost; journal entries with their MESSAGE_IDs and fields; the
#      template instance ssm-streamd@mics with its own socket; a hung engine (the test-only
#      `test-stall`) → the watchdog kills it and systemd restarts it; `systemctl stop` → inactive,
#      result success; then powers the container off.
#
# Needs root, debootstrap and systemd-nspawn (Debian: debootstrap, systemd-container); exits 77
# with the reason when one is missing (the test suite reports that as a skip). Prints "ok: …" per
# check and ends with "container test: passed" or the first failure (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=/var/cache/ssm-stream/bookworm
[ "${1:-}" = "--cache" ] && cache="${2:?--cache needs a directory}"

skip() { echo "skipped: $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
command -v debootstrap >/dev/null || skip "debootstrap is missing (apt install debootstrap)"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is missing (apt install systemd-container)"
for p in ssm-stream ssm-streamd; do
    [ -x ".build/release/$p" ] || { echo "error: .build/release/$p is missing: swift build -c release" >&2; exit 1; }
done

fail() {
    echo "FAILED: $*" >&2
    if [ -n "${init:-}" ]; then
        echo "--- the service's journal:" >&2
        nsenter -t "$init" -a journalctl -u 'ssm-streamd*' --no-pager 2>&1 | tail -25 >&2
    fi
    exit 1
}
ok() { echo "ok: $*"; }
# Waits up to $1 seconds for the command after it to succeed.
waitfor() { local t=$1; shift; local end=$((SECONDS + t)); until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done; }

# 1. The root, cached.
if [ ! -x "$cache/usr/lib/systemd/systemd" ]; then
    echo "debootstrap: Debian 12 into $cache (once; about 3 minutes)"
    rm -rf "$cache.tmp"; mkdir -p "$(dirname "$cache")"
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,libopenblas0,libsndfile1,libasound2,libsamplerate0,libsystemd0 \
        bookworm "$cache.tmp" http://deb.debian.org/debian >"$cache.log" 2>&1 \
        || { rm -rf "$cache.tmp"; skip "debootstrap could not build the root (no route to deb.debian.org?): $(tail -2 "$cache.log")"; }
    mv "$cache.tmp" "$cache"
fi
work=$(mktemp -d /var/tmp/ssm-container.XXXXXX)
root="$work/root"
nspawn_pid=""
cleanup() {
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        [ -n "${init:-}" ] && nsenter -t "$init" -a systemctl poweroff >/dev/null 2>&1 || true
        for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$nspawn_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
cp -a "$cache" "$root"

# 2. Install, as a user would (plus the Swift runtime the binaries load from the toolchain's path).
scripts/install.sh --no-build --destdir "$root" --prefix /usr/local >/dev/null
for lib in $(ldd .build/release/ssm-streamd .build/release/ssm-stream | awk '$3 ~ /swift/ {print $3}' | sort -u); do
    mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
done
share=/usr/local/share/ssm-stream
python3 - "$root$share/tone.wav" <<'EOF'
import math, struct, sys, wave
rate, n = 16000, 16000 * 2
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / rate) + 3000 * math.sin(2 * math.pi * 3000 * i / rate))) for i in range(n)))
EOF
config() {   # MODEL → the daemon's configuration: a paced, looped file through MODEL into a file
    cat <<EOF
model = "$share/models/$1"
[source]
type = "file"
path = "$share/tone.wav"
realtime = true
loop = true
[output]
type = "file"
path = "/var/lib/ssm-stream/out.wav"
[log]
status_interval = 1
EOF
}
config butter8-lowpass-1k.safetensors > "$root/etc/ssm-stream/ssm-streamd.toml"
config lowpass-1k.safetensors | sed 's|/var/lib/ssm-stream/out.wav|/var/lib/ssm-stream-mics/out.wav|' > "$root/etc/ssm-stream/mics.toml"
# The watchdog test: a short WatchdogSec and the test hook, by a drop-in as an operator would.
mkdir -p "$root/etc/systemd/system/ssm-streamd.service.d"
printf '[Service]\nWatchdogSec=3s\nEnvironment=SSM_STREAMD_TEST_HOOKS=1\n' > "$root/etc/systemd/system/ssm-streamd.service.d/test.conf"
: > "$root/etc/machine-id"

# 3. Boot.
setsid systemd-nspawn -D "$root" --register=no --keep-unit --console=read-only -b </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
init=""
# The container's init: the descendant of systemd-nspawn that is PID 1 of its own PID namespace
# and has exec'd systemd. (nspawn's first child is a short-lived intermediate that exits once it
# has cloned the init, so "the first child" may be gone a moment later.)
container_init() {
    local todo=("$nspawn_pid") p c
    while [ ${#todo[@]} -gt 0 ]; do
        p=${todo[0]}; todo=("${todo[@]:1}")
        for c in $(pgrep -P "$p" || true); do
            if [ "$(awk '/^NSpid:/ {print $NF}' "/proc/$c/status" 2>/dev/null)" = 1 ] \
                && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ]; then
                echo "$c"; return 0
            fi
            todo+=("$c")
        done
    done
    return 1
}
waitfor 60 container_init || fail "the container did not start: $(tail -5 "$work/console.log")"
init=$(container_init) || fail "the container's init is gone: $(tail -5 "$work/console.log")"
inside() { nsenter -t "$init" -a "$@"; }
waitfor 120 inside systemctl is-system-running --wait || true
state=$(inside systemctl is-system-running || true)
case "$state" in running|degraded) ok "container booted ($state)" ;; *) fail "container state '$state'" ;; esac

inside systemctl enable --now ssm-streamd || { inside journalctl -u ssm-streamd --no-pager | tail -20; fail "systemctl enable --now"; }
[ "$(inside systemctl is-active ssm-streamd)" = active ] || fail "not active after start"
[ "$(inside systemctl is-enabled ssm-streamd)" = enabled ] || fail "not enabled"
ok "systemctl enable --now ssm-streamd: enabled, active (Type=notify: after READY=1)"

# The hardened unit hides /proc/cpuinfo (ProcSubset=pid): the OpenBLAS core pin must still see
# AVX-512 (through CPUID) and have re-executed the daemon with OPENBLAS_CORETYPE=Haswell.
if grep -q ' avx512f' /proc/cpuinfo; then
    mainpid=$(inside systemctl show -p MainPID --value ssm-streamd)
    env=$(inside cat "/proc/$mainpid/environ" | tr '\0' '\n')
    grep -qx OPENBLAS_CORETYPE=Haswell <<<"$env" \
        || fail "AVX-512 CPU, but the daemon runs without OPENBLAS_CORETYPE=Haswell"
    ok "AVX-512 under the hardened unit: OpenBLAS pinned to its Haswell kernels (no allocation per block)"
fi

status() { inside /usr/local/bin/ssm-stream status --json --socket "${1:-/run/ssm-streamd/control.sock}"; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read()).get('$1',''))"; }
waitfor 30 sh -c "[ \"\$(nsenter -t $init -a /usr/local/bin/ssm-stream status --json --socket /run/ssm-streamd/control.sock | python3 -c \"import json,sys; print(json.load(sys.stdin)['frames'] > 8000)\")\" = True ]" \
    || fail "status: no frames: $(status)"
ok "ssm-stream status over the socket: $(status | field state), $(status | field frames) frames"

# Reload with another model: swapped in place.
config lowpass-1k.safetensors > "$root/etc/ssm-stream/ssm-streamd.toml"
inside systemctl reload ssm-streamd || fail "systemctl reload"
waitfor 10 sh -c "nsenter -t $init -a /usr/local/bin/ssm-stream status --json --socket /run/ssm-streamd/control.sock | grep -q '\"last_reload\":\"swapped\"'" \
    || fail "reload: $(status)"
[ "$(status | field restarts)" = 0 ] || fail "the stream restarted on reload"
ok "systemctl reload with a new model: swapped in place ($(status | field model))"

# The template instance, with its own socket.
inside systemctl start ssm-streamd@mics || { inside journalctl -u ssm-streamd@mics --no-pager | tail -20; fail "start ssm-streamd@mics"; }
waitfor 20 sh -c "nsenter -t $init -a /usr/local/bin/ssm-stream status --json --socket /run/ssm-streamd-mics/control.sock | grep -q '\"state\":\"running\"'" \
    || fail "ssm-streamd@mics status"
ok "ssm-streamd@mics: active, its own socket /run/ssm-streamd-mics/control.sock"
inside systemctl stop ssm-streamd@mics

# The journal: entries with their fields.
# (Read once into a variable: `journalctl | grep -q` under pipefail fails when grep stops early.)
j=$(inside journalctl -u ssm-streamd -o json --no-pager)
has() { grep -q "$1" <<<"$j"; }
has '"MESSAGE_ID":"f477f8971c6f4d8599ffa424704a5a36"' || fail "no 'started' entry"
has '"MESSAGE_ID":"3b1a02bec2d34939b96e17d55e791600"' || fail "no 'model loaded' entry"
grep '"SSM_RELOAD":"swapped"' <<<"$j" | grep '"SSM_SWAP_FRAME"' >/dev/null || fail "the swap entry lacks its fields"
has '"SSM_MODEL_SHA256":"[0-9a-f]\{64\}"' || fail "no SSM_MODEL_SHA256"
ok "journal: started and model-loaded entries with MESSAGE_ID, SSM_SWAP_FRAME, SSM_MODEL_SHA256"

# A hung engine: the watchdog lapses, systemd kills and restarts the service.
restarts() { inside systemctl show -p NRestarts --value ssm-streamd; }
before=$(restarts)
python3 - "$init" <<'EOF' || fail "test-stall"
import socket, sys
# The socket lives in the container's /run: reach it through its init's root.
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(f"/proc/{sys.argv[1]}/root/run/ssm-streamd/control.sock")
s.sendall(b"test-stall\n")
reply = s.recv(4096).decode()
assert '"ok":true' in reply, reply
EOF
waitfor 30 sh -c "[ \$(nsenter -t $init -a systemctl show -p NRestarts --value ssm-streamd) -gt $before ]" \
    || fail "no restart after the engine hung: $(inside systemctl status ssm-streamd --no-pager | tail -5)"
waitfor 20 sh -c "[ \"\$(nsenter -t $init -a systemctl is-active ssm-streamd)\" = active ]" || fail "not active again"
j=$(inside journalctl -u ssm-streamd --no-pager)
grep -qi "watchdog" <<<"$j" || fail "the journal does not mention the watchdog"
ok "a hung engine: watchdog timeout, restarted ($(restarts) restart(s)), active again"

inside systemctl stop ssm-streamd
[ "$(inside systemctl is-active ssm-streamd || true)" = inactive ] || fail "not inactive after stop"
[ "$(inside systemctl show -p Result --value ssm-streamd)" = success ] || fail "result $(inside systemctl show -p Result --value ssm-streamd)"
j=$(inside journalctl -u ssm-streamd -o json --no-pager)
has '"MESSAGE_ID":"65ec27916c4d49caabbd53e1b546212a"' || fail "no 'stopped' entry"
ok "systemctl stop: inactive, result success, a 'stopped' entry"
echo "container test: passed"
