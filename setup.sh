#!/usr/bin/env bash
# Install what the PBX needs on Debian 12/13 (apt packages, a virtualenv at .venv, the package),
# then optionally run it or its tests. Safe to repeat; it only installs what is missing.
#
#   ./setup.sh               install only
#   ./setup.sh run [ARGS]    install, then `pbx run --demo ARGS` (data in ./var, SIP 127.0.0.1:5060)
#                            with `pbx web` beside it (the setup page on http://127.0.0.1:8080/)
#   ./setup.sh test [ARGS]   install with test tools, then ruff, mypy and pytest ARGS
#   ./setup.sh soak [ARGS]   install, then the 10-minute soak (bench/soak ARGS; --help)
#   ./setup.sh image [ARGS]  install with the image tools, then build the appliance image
#                            (image/build.py ARGS; --help): build/image/pbx-amd64.img
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(python3 python3-venv python3-dev gcc libasound2-dev sqlite3 iproute2 util-linux coreutils procps
              openssl tzdata sip-tester baresip-core tcpdump
              asterisk-core-sounds-ru-wav asterisk-core-sounds-en-wav asterisk-moh-opsound-wav
              espeak-ng sox libsox-fmt-mp3)
# The browser tests drive Debian's Chromium (Playwright downloads no browser of its own); the
# trunk tests run a real Kamailio as the SIP provider (tests/interop/kamailio.py); systemd's
# `systemd-analyze security` scores the units (tests/test_units.py); the image is built and
# booted under QEMU with OVMF on a LAN whose DHCP server is dnsmasq (tests/image/).
IMAGE_APT_PACKAGES=(mmdebstrap mtools dosfstools fdisk e2fsprogs)
TEST_APT_PACKAGES=(chromium fonts-dejavu-core kamailio kamailio-sqlite-modules systemd
                   "${IMAGE_APT_PACKAGES[@]}" qemu-system-x86 ovmf dnsmasq-base)

packages=("${APT_PACKAGES[@]}")
[ "${1:-}" = test ] && packages+=("${TEST_APT_PACKAGES[@]}")
[ "${1:-}" = image ] && packages+=("${IMAGE_APT_PACKAGES[@]}")
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Debian starts a system Kamailio on *:5060 when it installs the package: the tests start
  # their own, and the box needs the port.
  if [[ " ${missing[*]} " == *" kamailio "* ]] && command -v systemctl >/dev/null; then
    "${sudo[@]}" systemctl disable --now kamailio.service >/dev/null 2>&1 || true
  fi
fi

mode=${1:-install}
extras=""
[ "$mode" = test ] && extras="[test]"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)${extras:+-test}"
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras}"
  touch "$stamp"
fi

case "$mode" in
  install) echo "setup: done; run .venv/bin/pbx --help" ;;
  run)
    shift
    .venv/bin/pbx web &
    web_pid=$!
    # The analog gateway with the simulated board, started once the core below is up (it makes
    # the demo ports first: FXS 1-2 as extensions 201-202, FXO 3); `pbx lines sim offhook 1`.
    (
      for _ in $(seq 300); do [ -S "${PBX_DATA:-./var}/run/core.sock" ] && break; sleep 0.1; done
      exec .venv/bin/pbx lines run --board sim
    ) &
    lines_pid=$!
    trap 'kill "$web_pid" "$lines_pid" 2>/dev/null; wait "$web_pid" "$lines_pid" 2>/dev/null' EXIT
    .venv/bin/pbx run --demo "$@"
    ;;
  test)
    shift
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy
    exec .venv/bin/python -m pytest "$@"
    ;;
  soak)
    shift
    exec .venv/bin/python bench/soak "$@"
    ;;
  image)
    shift
    exec .venv/bin/python image/build.py --cache build/apt-cache "$@"
    ;;
  *) echo "usage: ./setup.sh [install|run [ARGS]|test [PYTEST ARGS]|soak [ARGS]|image [ARGS]]" >&2
     exit 2 ;;
esac
