#!/usr/bin/env bash
# Make sure Autobahn|Testsuite's `wstest` is installed and print its path.
#
#   scripts/wstest-install.sh      -> prints e.g. /root/.cache/gmws/wstest/bin/wstest
#
# wstest runs on Python 2.7 only. The venv lives under ~/.cache/gmws/wstest
# (or $GMWS_WSTEST_VENV) and is built once, on the first Python 2.7 found:
# $GMWS_PY27, a pyenv-installed 2.7, /usr/bin/python2.7; with none of them it
# installs python2.7 from Debian 11 (bullseye) through apt, pinned below the
# machine's own release so nothing else changes (needs root).
# Everything comes from the Python package index and Debian's archive.
set -euo pipefail

venv=${GMWS_WSTEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gmws/wstest}
if [ -x "$venv/bin/wstest" ]; then
  echo "$venv/bin/wstest"
  exit 0
fi

find_py27() {
  local candidate
  for candidate in "${GMWS_PY27:-}" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python2.7 \
    /usr/bin/python2.7 /usr/local/bin/python2.7; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

apt_py27() {
  # Debian 12 dropped Python 2; bullseye still has it. Use the mirror the
  # machine already uses, at a priority that only ever serves what we ask for.
  local mirror
  mirror=$(grep -hoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "deb $mirror bullseye main" > /etc/apt/sources.list.d/gmws-bullseye.list
  printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 50\n' > /etc/apt/preferences.d/gmws-bullseye
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -t bullseye python2.7 python2.7-dev gcc >&2
}

py27=$(find_py27) || { apt_py27; py27=$(find_py27); }
echo "wstest-install: building $venv on $py27" >&2

# The last virtualenv able to make a Python 2.7 environment is 20.21.
boot="$venv.boot"
python3 -m venv "$boot"
"$boot/bin/pip" install -q 'virtualenv==20.21.1' >&2
rm -rf "$venv"
"$boot/bin/virtualenv" -q -p "$py27" "$venv" >&2
rm -rf "$boot"

# autobahntestsuite's own requirements float; these are versions that still
# install and run on Python 2.7 together.
PIP_NO_PYTHON_VERSION_WARNING=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install -q \
  autobahntestsuite==25.10.1 autobahn==0.10.9 Twisted==19.10.0 txaio==2.1.0 \
  zope.interface==4.6.0 incremental==16.10.1 constantly==15.1.0 Automat==22.10.0 \
  attrs==21.4.0 hyperlink==21.0.0 idna==2.10 PyHamcrest==1.10.1 six==1.16.0 \
  setuptools==44.0.0 pyOpenSSL==19.1.0 cryptography==3.3.2 cffi==1.15.1 pycparser==2.21 \
  enum34==1.1.10 ipaddress==1.0.23 service-identity==18.1.0 pyasn1==0.5.1 \
  pyasn1-modules==0.3.0 klein==17.10.0 Werkzeug==1.0.1 Jinja2==2.11.3 MarkupSafe==1.1.1 \
  unittest2==1.1.0 linecache2==1.0.0 traceback2==1.4.0 typing==3.10.0.0 \
  wsaccel==0.6.6 ujson==2.0.3 >&2
"$venv/bin/wstest" --help >/dev/null 2>&1 || { echo "wstest-install: wstest does not start" >&2; exit 1; }
echo "$venv/bin/wstest"
