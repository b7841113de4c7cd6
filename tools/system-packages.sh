#!/usr/bin/env bash
# The system packages the whole test suite (`make test`, CI) needs, in one place.
#
#   bash tools/system-packages.sh
#
# Every package present: exits 0. Some missing: as root with apt-get, installs them (one
# `apt-get update`, then `apt-get install --no-install-recommends`, noninteractive) and
# checks again; otherwise prints ONE line with the `sudo apt-get install ...` command
# that installs all of them and exits 1 at once, before anything long runs (`make test`
# calls this before it creates .venv). `make test-quick` does not need these packages:
# it skips the tests that do.
#
# Environment: PYTHON (default python3) and VENV (default .venv) as in the Makefile (no
# python3-venv is needed once VENV/bin/python exists); EDGEKIT_PRETEND_MISSING="PKG ..."
# treats those Debian packages as missing, to try the install path and the message.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
PRETEND=" ${EDGEKIT_PRETEND_MISSING:-} "
SBIN_PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# Each check: "debian-package|how to tell it is there".
CHECKS=(
  "make|program make"
  "mosquitto|program mosquitto"           # MQTT broker for the sink tests
  "espeak-ng|program espeak-ng"           # speech for the kws data
  "openssh-server|program sshd"           # remote bench over loopback ssh
  "openssh-client|program ssh"
  "openssl|program openssl"               # broker and signing PKI
  "libportaudio2|library libportaudio.so.2"  # the microphone source (sounddevice)
  "libasound2-data|file /usr/share/alsa/alsa.conf"  # ALSA's configuration for PortAudio
  "python3-venv|venv"                     # `make` creates .venv with it
)

present() {  # KIND ARG
  case "$1" in
    program) PATH="$SBIN_PATH" command -v "$2" >/dev/null 2>&1 ;;
    library) PATH="$SBIN_PATH" ldconfig -p 2>/dev/null | grep "^[[:space:]]*${2//./\\.} " >/dev/null ;;  # no -q: SIGPIPE
    file) [ -e "$2" ] ;;
    venv) [ -x "$VENV/bin/python" ] || "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 ;;
  esac
}

missing_packages() {
  local entry package check
  for entry in "${CHECKS[@]}"; do
    package="${entry%%|*}"
    check="${entry#*|}"
    if [[ "$PRETEND" == *" $package "* ]] || ! present ${check}; then
      printf '%s ' "$package"
    fi
  done
}

missing="$(missing_packages)"
missing="${missing% }"
if [ -z "$missing" ]; then
  exit 0
fi

if [ "${EUID:-$(id -u)}" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: installing $missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086  # one word per package
  apt-get install -y -qq --no-install-recommends $missing
  PRETEND=" "
  still="$(missing_packages)"
  if [ -n "$still" ]; then
    echo "system-packages: still missing after apt-get install: ${still% }" >&2
    exit 1
  fi
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  how="install them with: sudo apt-get install --no-install-recommends $missing"
else
  how="install them with your package manager (these are Debian's names)"
fi
echo "system packages missing for make test: $missing; $how (or run make test-quick: the reduced suite, which skips the tests that need them)" >&2
exit 1
