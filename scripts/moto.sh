#!/usr/bin/env bash
# Starts moto (AWS APIs on loopback) for the EventBridge/SQS/DynamoDB adapter tests and prints the
# environment the tests read. Installs moto into a venv under the user's cache on first use.
#
#   eval "$(scripts/moto.sh)"     # starts it; prints AWS_ENDPOINT_URL, AWS_REGION, credentials, MOTO_PID
#   kill "$MOTO_PID"              # stops it
#
# MOTO_PORT picks the port (default: a free one); MOTO_VENV the venv; MOTO_VERSION the moto release;
# MOTO_SERIALIZE_DYNAMODB=1 runs scripts/moto_server.py instead of moto_server: the same server with
# DynamoDB requests serialized and transactions rolled back item by item (see that file: moto's own
# DynamoDB loses writes under concurrent clients, and its transactions slow down as the table grows).
# Everything but the export lines goes to stderr, so the output can be eval'ed.
set -euo pipefail

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
MOTO_VENV="${MOTO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ordernimbus/moto-venv}"
python="$MOTO_VENV/bin/python"

installed_version() {
  [[ -x "$MOTO_VENV/bin/moto_server" ]] || return 0
  "$python" -c 'import moto; print(moto.__version__)' 2>/dev/null || true
}

if [[ "$(installed_version)" != "$MOTO_VERSION" ]]; then
  echo "installing moto[server]==$MOTO_VERSION into $MOTO_VENV" >&2
  python3 -m venv "$MOTO_VENV" >&2
  "$python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
fi

port="${MOTO_PORT:-}"
if [[ -z "$port" ]]; then
  port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
endpoint="http://127.0.0.1:$port"
log="$(dirname "$MOTO_VENV")/moto-$port.log"

# Output goes to a log file: a child still holding our stdout would keep `$(…)` waiting forever.
server=("$MOTO_VENV/bin/moto_server")
if [[ -n "${MOTO_SERIALIZE_DYNAMODB:-}" ]]; then
  server=("$python" "$(cd "$(dirname "$0")" && pwd)/moto_server.py")
fi
nohup "${server[@]}" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!

for _ in $(seq 1 100); do
  if "$python" -c "import urllib.request, sys; urllib.request.urlopen('$endpoint/moto-api/', timeout=1)" 2>/dev/null; then
    echo "moto $MOTO_VERSION answering at $endpoint (pid $pid, log $log)" >&2
    cat <<EXPORTS
export AWS_ENDPOINT_URL=$endpoint
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export MOTO_PID=$pid
EXPORTS
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "moto_server exited at start; its log ($log):" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "moto_server did not answer at $endpoint within 10 s; see $log" >&2
kill "$pid" 2>/dev/null || true
exit 1
