#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (as root): system packages, the venv, the web viewer.
# Fast when nothing changed: each step compares a stamp before doing work.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  gstreamer1.0-nice gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0
  gir1.2-gst-plugins-bad-1.0 python3-gst-1.0 gstreamer1.0-python3-plugin-loader python3-gi
  python3-venv python3-pip ffmpeg chromium chromium-driver vlc-bin vlc-plugin-base
  iproute2 util-linux openssl
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to install system packages" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node.js ships with this machine image; on a bare Debian 12 take Debian's.
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

# The venv must come from Debian's python: it sees gi and gst-python's overrides.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import gi' 2>/dev/null; then
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
py_stamp=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat .venv/.stamp-py 2>/dev/null)" != "$py_stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  echo "$py_stamp" > .venv/.stamp-py
fi

# The viewer: vite builds web/ into src/framecast/web, which the HTTP server serves.
if [ -f web/package.json ]; then
  web_stamp=$(cat web/package.json web/package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
  if [ ! -d web/node_modules ] || [ "$(cat web/node_modules/.stamp 2>/dev/null)" != "$web_stamp" ]; then
    (cd web && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund -s; else npm install --no-audit --no-fund -s; fi)
    echo "$web_stamp" > web/node_modules/.stamp
  fi
  src_stamp=$(find web -path web/node_modules -prune -o -type f -print | sort | xargs cat | sha256sum | cut -c1-16)
  if [ ! -f src/framecast/web/index.html ] || [ "$(cat src/framecast/web/.stamp 2>/dev/null)" != "$src_stamp" ]; then
    (cd web && npm run -s build)
    echo "$src_stamp" > src/framecast/web/.stamp
  fi
fi
echo "setup: ready (.venv/bin/framecast)"
