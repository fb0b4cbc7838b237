# Shared by scripts/demo, scripts/test and .ci/run (sourced, not run).
#
#   TASKQ_VENV   the virtualenv to create or use (default: .venv in the repo)
#   PYTHON       the interpreter that creates it (default: python3)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${TASKQ_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
# Every install is pinned by this file (tox reads it too, as PIP_CONSTRAINT).
CONSTRAINTS=$ROOT/requirements/constraints.txt

say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "$0" "$*" >&2; exit 1; }

# The oldest Python the package supports (pyproject.toml: requires-python).
MIN_PYTHON=3.11

# python_version PYTHON: print "3.x.y" for that interpreter, or fail if it does not run.
python_version() {
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null
}

# python_supported PYTHON: true if that interpreter runs and is $MIN_PYTHON or newer.
python_supported() {
    "$1" -c "import sys; sys.exit(sys.version_info < (${MIN_PYTHON/./, }))" 2>/dev/null
}

# check_venv_python: refuse a $VENV made with a Python that cannot run the
# package, saying what to do, rather than failing in pip the same way on
# every run (the venv is kept, so the next run would find it again).
check_venv_python() {
    [[ -e $VENV/bin/python ]] || return 0
    local shown=${VENV#"$ROOT"/} version
    if ! version=$(python_version "$VENV/bin/python"); then
        die "$shown/bin/python does not run (its Python was removed or moved?): remove the virtualenv (rm -rf $shown) and run this again"
    fi
    if ! python_supported "$VENV/bin/python"; then
        die "$shown was made with Python $version; django_taskq needs Python $MIN_PYTHON or newer. Remove it (rm -rf $shown) and run this again with a newer Python on PATH as python3, or name one: PYTHON=python3.12 $0"
    fi
}

# ensure_venv [EXTRAS]: create $VENV if missing and pip install -e ".[EXTRAS]"
# with the versions of requirements/constraints.txt. The install is skipped
# when neither pyproject.toml, the constraints nor the package version
# changed since the last one with the same extras (a stamp file in the venv
# remembers them).
ensure_venv() {
    local extras=${1:-} spec=. stamp want version
    [[ -n $extras ]] && spec=".[$extras]"
    check_venv_python
    if [[ ! -x $VENV/bin/python ]]; then
        command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python $MIN_PYTHON or newer, or name one: PYTHON=python3.12 $0"
        version=$(python_version "$PYTHON") || die "$PYTHON does not run: name another one, e.g. PYTHON=python3.12 $0"
        python_supported "$PYTHON" \
            || die "$PYTHON is Python $version; django_taskq needs Python $MIN_PYTHON or newer: install one and name it, e.g. PYTHON=python3.12 $0"
        say "creating the virtualenv $VENV (Python $version)"
        "$PYTHON" -m venv "$VENV" \
            || die "could not create a virtualenv (Debian/Ubuntu: apt-get install python3-venv)"
    fi
    stamp=$VENV/.taskq-installed${extras:+-$extras}
    want=$({ cat "$ROOT/pyproject.toml" "$CONSTRAINTS"; grep '^__version__' "$ROOT/django_taskq/__init__.py"; } | cksum)
    if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        # Before 0.2 the distribution was named django-taskq (now an unrelated
        # project's name on PyPI): drop it from a venv made then.
        if "$VENV/bin/python" -I -c 'import importlib.metadata as m; m.distribution("django-taskq")' \
            2>/dev/null; then
            say "uninstalling django-taskq, this project's distribution name before 0.2"
            (cd / && "$VENV/bin/python" -m pip uninstall --quiet --yes django-taskq >/dev/null) || true
        fi
        say "installing this checkout into $VENV (pip install -c requirements/constraints.txt -e '$spec')"
        (cd "$ROOT" && PIP_CONSTRAINT="$CONSTRAINTS" "$VENV/bin/python" -m pip install --quiet \
            --disable-pip-version-check -c "$CONSTRAINTS" -e "$spec") \
            || die "pip install -e '$spec' failed (see above)"
        printf '%s\n' "$want" >"$stamp"
    fi
}

# free_port: print a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# redis_pong PORT: true if a Redis on 127.0.0.1:PORT answers PING (without a password).
redis_pong() {
    local reply=""
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || true
    exec 3>&- 3<&-
    [[ $reply == "+PONG"* ]]
}

REDIS_HINT="install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)"
