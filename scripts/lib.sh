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
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# ensure_venv [EXTRAS]: create $VENV if missing and pip install -e ".[EXTRAS]"
# with the versions of requirements/constraints.txt. The install is skipped
# when neither pyproject.toml nor the constraints changed since the last one
# with the same extras (a stamp file in the venv remembers them).
ensure_venv() {
    local extras=${1:-} spec=. stamp want
    [[ -n $extras ]] && spec=".[$extras]"
    if [[ ! -x $VENV/bin/python ]]; then
        command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or newer"
        say "creating the virtualenv $VENV ($("$PYTHON" --version 2>&1))"
        "$PYTHON" -m venv "$VENV" \
            || die "could not create a virtualenv (Debian/Ubuntu: apt-get install python3-venv)"
    fi
    stamp=$VENV/.taskq-installed${extras:+-$extras}
    want=$(cat "$ROOT/pyproject.toml" "$CONSTRAINTS" | cksum)
    if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        say "installing django-taskq into $VENV (pip install -c requirements/constraints.txt -e '$spec')"
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
