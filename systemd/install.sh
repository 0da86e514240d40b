#!/bin/sh
# Install datasaur-notifier as a systemd service on a stock Debian/Ubuntu server.
#
#   systemd/install.sh [PREFIX]        (as root, from a checkout; PREFIX: /opt/datasaur-notifier)
#
# PREFIX is the one place to change: the script creates a virtual environment there
# (PEP 668: Debian 12 and Ubuntu 23.04+ refuse `pip install` into the system Python),
# installs this checkout into it, and writes the unit with ExecStartPre= and ExecStart=
# both pointing at PREFIX/bin/datasaur-notifier. Run it again to upgrade in place.
#
# Environment (defaults in brackets):
#   PYTHON    the interpreter the venv is made from [/usr/bin/python3]; needs python3-venv
#   EXTRAS    optional extras to install, e.g. "postgres,apprise" [none]
#   UNIT_DIR  where the unit goes [/etc/systemd/system]
#   DOC_DIR   where the README goes (the unit's Documentation=) [/usr/share/doc/datasaur-notifier]
set -eu

PREFIX=${1:-/opt/datasaur-notifier}
PYTHON=${PYTHON:-/usr/bin/python3}
EXTRAS=${EXTRAS:-}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
DOC_DIR=${DOC_DIR:-/usr/share/doc/datasaur-notifier}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
DEFAULT_PREFIX=/opt/datasaur-notifier

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

case "$PREFIX" in
    /*) ;;
    *) fail "PREFIX $PREFIX: give an absolute path (the unit names it)" ;;
esac
PREFIX=${PREFIX%/}
hidden() {  # ProtectHome=yes makes /home, /root and /run/user invisible to the service
    case "$1" in /home | /home/* | /root | /root/* | /run/user | /run/user/*) return 0 ;; esac
    return 1
}
hidden "$PREFIX" && fail "PREFIX $PREFIX: under /home, /root or /run/user, which the unit's ProtectHome=yes hides from the service; use /opt/datasaur-notifier"
[ -x "$PYTHON" ] || fail "PYTHON $PYTHON: not found; install python3 (apt-get install python3-venv)"
REAL_PYTHON=$(readlink -f "$PYTHON")
hidden "$REAL_PYTHON" && fail "PYTHON $PYTHON is $REAL_PYTHON, under /home or /root, which ProtectHome=yes hides from the service; use the system's /usr/bin/python3"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || fail "PYTHON $PYTHON: Python 3.11 or newer is needed"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
    || fail "PYTHON $PYTHON has no venv module: install python3-venv first (apt-get install python3-venv)"

echo "install.sh: virtual environment in $PREFIX"
"$PYTHON" -m venv "$PREFIX"
TARGET=$SOURCE
[ -n "$EXTRAS" ] && TARGET="$SOURCE[$EXTRAS]"
"$PREFIX/bin/pip" install --quiet --disable-pip-version-check "$TARGET"
"$PREFIX/bin/datasaur-notifier" --version >/dev/null \
    || fail "$PREFIX/bin/datasaur-notifier does not run"

UNIT="$UNIT_DIR/datasaur-notifier.service"
echo "install.sh: unit $UNIT (ExecStartPre= and ExecStart= run $PREFIX/bin/datasaur-notifier)"
install -d -m 0755 "$UNIT_DIR" "$DOC_DIR"
sed -e "/^ExecStart/s#$DEFAULT_PREFIX/#$PREFIX/#" "$SOURCE/systemd/datasaur-notifier.service" >"$UNIT.tmp"
chmod 0644 "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"
install -m 0644 "$SOURCE/README.md" "$DOC_DIR/README.md"

cat <<NEXT
install.sh: installed $("$PREFIX/bin/datasaur-notifier" --version).
Next: a config in /etc/datasaur-notifier/config.yaml (datasaur-notifier init writes one),
its secrets in /etc/datasaur-notifier/credentials/, then
  systemctl daemon-reload && systemctl enable --now datasaur-notifier
NEXT
