#!/usr/bin/env bash
# Installs the Debian packages ssm-stream builds against, if any is missing.
# (The Swift toolchain itself is assumed: https://www.swift.org/install/linux/)
set -euo pipefail
# systemd: systemd-analyze, systemd-socket-activate and systemd-journald for the daemon tests;
# socat: a real control-socket client for them; alsa-utils: arecord, which the ALSA test reads
# the same device with.
# debootstrap, systemd-container: the test that boots a real systemd in a container.
pkgs=(pkg-config libopenblas-dev libsndfile1-dev libasound2-dev libsystemd-dev libsamplerate0-dev systemd socat alsa-utils
      debootstrap systemd-container)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
