# Shared by scripts/demo and scripts/test: a development venv and a running testbed.
# Sourced, not run. Needs root on Debian 12.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
if [ "$(id -u)" != 0 ]; then
  echo "hpchub: run this as root (it installs packages and starts Slurm)" >&2
  exit 1
fi
need=()
for pkg in python3-venv python3-dev sudo git; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
# A failed install stops here, with pip's own message (pip's exit status, not grep's, decides).
quiet_pip() {
  local out
  if ! out="$(.venv/bin/pip "$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "hpchub: pip $* failed (above)" >&2
    exit 1
  fi
  printf '%s\n' "$out" | grep -v -e "^WARNING: Location" -e "^$" || true
}
quiet_pip install -q --upgrade pip
# The product with the extras the suite needs, then the testbed (a separate distribution:
# a development tool that the production wheel does not contain).
quiet_pip install -q -e ".[test,browser,dev,bench,singleuser]" -e ./testbed
.venv/bin/hpchub-testbed up
