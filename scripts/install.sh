#!/usr/bin/env bash
# Installs ssm-stream and ssm-streamd (or removes them):
#
#   scripts/install.sh [--prefix /usr/local] [--destdir DIR] [--no-build]
#   scripts/install.sh --uninstall [--prefix /usr/local] [--destdir DIR]
#
# Builds release (unless --no-build: the binaries already in .build/release), then installs
#   PREFIX/bin/ssm-stream, PREFIX/bin/ssm-streamd
#   PREFIX/share/ssm-stream/models/*.safetensors          the shipped models
#   PREFIX/share/man/man1/ssm-stream.1, man8/ssm-streamd.8 from the programs' own --help
#   /etc/ssm-stream/ssm-streamd.toml                       never overwriting an existing one
#   /etc/systemd/system/ssm-streamd.service, ssm-streamd@.service (one daemon per
#                                                          /etc/ssm-stream/NAME.toml)
# with PREFIX written into the units and the configuration. --destdir stages everything under
# DIR (for packaging, or a container's root). Without --destdir, as root with systemd running,
# `systemctl daemon-reload` follows; `systemctl enable --now ssm-streamd` is then up to you.
# --uninstall removes what install put there, except configurations in /etc/ssm-stream.
set -euo pipefail
caller=$PWD   # a relative --destdir is relative to where install.sh was run from
cd "$(dirname "$0")/.."

prefix=/usr/local destdir="" build=1 uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --destdir) destdir="${2:?--destdir needs a directory}"; shift 2 ;;
        --destdir=*) destdir="${1#*=}"; shift ;;
        --no-build) build=0; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 64 ;;
    esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path, not '$prefix'" >&2; exit 64 ;; esac
[ -z "$destdir" ] || case "$destdir" in /*) ;; *) destdir="$caller/$destdir" ;; esac

bin="$destdir$prefix/bin"
share="$destdir$prefix/share/ssm-stream"
man="$destdir$prefix/share/man"
etc="$destdir/etc/ssm-stream"
units="$destdir/etc/systemd/system"

if [ "$uninstall" = 1 ]; then
    rm -fv "$bin/ssm-stream" "$bin/ssm-streamd" "$man/man1/ssm-stream.1" "$man/man8/ssm-streamd.8" \
        "$units/ssm-streamd.service" "$units/ssm-streamd@.service"
    rm -rfv "$share"
    [ -d "$etc" ] && echo "kept the configuration in $etc (remove it yourself if you no longer want it)"
    if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
    exit 0
fi

if [ "$build" = 1 ]; then
    swift build -c release --product ssm-stream
    swift build -c release --product ssm-streamd
fi
for p in ssm-stream ssm-streamd; do
    [ -x ".build/release/$p" ] || { echo "install.sh: .build/release/$p is missing (run without --no-build)" >&2; exit 1; }
done

install -d "$bin" "$share/models" "$man/man1" "$man/man8" "$etc" "$units"
install -m 0755 .build/release/ssm-stream .build/release/ssm-streamd "$bin/"
install -m 0644 models/*.safetensors "$share/models/"

# Man pages from the programs' own help (every subcommand of ssm-stream, with its examples).
manpage() {   # NAME SECTION SUMMARY, then the help texts on stdin
    printf '.TH %s %s "%s" "ssm-stream %s" "ssm-stream"\n' "$(echo "$1" | tr a-z A-Z)" "$2" \
        "$(date -u +%Y-%m-%d)" "$(.build/release/ssm-stream version 2>/dev/null | head -1 | awk '{print $2}')"
    printf '.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' "$1" "$3"
    sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/"
    printf '.fi\n.SH SEE ALSO\nThe README of the ssm-stream package: configuration keys, the control protocol, exit codes.\n'
}
{
    .build/release/ssm-stream --help
    for sub in $(.build/release/ssm-stream --help | awk '/^SUBCOMMANDS:/ {on=1; next} on && /^  [a-z]/ {print $1}'); do
        printf '\n'; .build/release/ssm-stream help "$sub"
    done
} | manpage ssm-stream 1 "run, design, train, inspect and query state-space models over audio and sensor streams" \
    > "$man/man1/ssm-stream.1"
.build/release/ssm-streamd --help | manpage ssm-streamd 8 "state-space models over live audio and sensor streams, as a service" \
    > "$man/man8/ssm-streamd.8"

# The units, with this prefix; the template runs /etc/ssm-stream/%i.toml.
sed "s|/usr/local|$prefix|g" systemd/ssm-streamd.service > "$units/ssm-streamd.service"
sed "s|/usr/local|$prefix|g" systemd/ssm-streamd@.service > "$units/ssm-streamd@.service"
chmod 0644 "$units/ssm-streamd.service" "$units/ssm-streamd@.service"

# The configuration: never overwritten (an administrator's edits stay).
if [ -e "$etc/ssm-streamd.toml" ]; then
    echo "kept the existing $etc/ssm-streamd.toml (the shipped one is configs/ssm-streamd.toml)"
else
    sed "s|/usr/local|$prefix|g" configs/ssm-streamd.toml > "$etc/ssm-streamd.toml"
    chmod 0644 "$etc/ssm-streamd.toml"
fi

echo "installed ssm-stream and ssm-streamd under $destdir$prefix, units in $units, configuration in $etc"
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "next: systemctl enable --now ssm-streamd   (or ssm-streamd@NAME for /etc/ssm-stream/NAME.toml)"
fi
