# Shared set-up for scripts/test and scripts/demo: a local venv with the pinned tools,
# a shared cargo target directory, and a moto server on a free loopback port.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# Reused across clones on the same machine so the AWS SDK crates compile once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iam-sentinel/target}"

# Bold only on a terminal, and never when NO_COLOR is set (https://no-color.org).
# bold FD: succeeds when output on file descriptor FD may carry ANSI codes.
bold() { [[ -t "$1" && -z "${NO_COLOR:-}" && "${TERM:-}" != dumb ]]; }
# cargo colours on a terminal unless told otherwise; NO_COLOR tells it.
if [[ -n ${NO_COLOR:-} ]]; then export CARGO_TERM_COLOR=never; fi
log() {
  if bold 2; then printf '\033[1m==> %s\033[0m\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}

# ensure_venv [DIR REQUIREMENTS]: a venv with exactly the pinned requirements (re-installed when they change).
# shellcheck disable=SC2120 # the arguments are optional
ensure_venv() {
  local dir="${1:-$VENV}" req="${2:-$ROOT/scripts/requirements.txt}"
  local stamp="$dir/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  local pins
  pins=$(grep -Ev '^[[:space:]]*(#|$)' "$req" | paste -sd' ' -)
  log "installing pinned tools into ${dir#"$ROOT"/}: $pins (first run only; a few minutes)"
  python3 -m venv "$dir"
  # pip's own output is the progress report: each package as it is fetched, then the install.
  "$dir/bin/pip" install --disable-pip-version-check --no-input -r "$req"
  echo "$want" > "$stamp"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts moto on 127.0.0.1 and exports the variables that point the AWS SDK at it.
# MOTO_DETACH=1 starts it in its own session, so that it outlives the script and its terminal.
start_moto() {
  local detach=()
  if [[ ${MOTO_DETACH:-} == 1 ]] && command -v setsid >/dev/null; then detach=(setsid); fi
  MOTO_PORT=$(free_port)
  MOTO_IAM_LOAD_MANAGED_POLICIES=true "${detach[@]}" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"${MOTO_LOG:-/dev/null}" 2>&1 </dev/null &
  MOTO_PID=$!
  trap stop_moto EXIT
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$MOTO_PORT),0.2)" 2>/dev/null; then break; fi
    sleep 0.1
  done
  export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
}

stop_moto() {
  if [[ -n "${MOTO_PID:-}" ]]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
}

# The shared target directory may hold this crate built from another checkout, which cargo
# can take for fresh (it compares the sources' times by relative path, and the test
# binaries have that checkout's paths compiled in). When the last build came from
# elsewhere, this crate's own artefacts are removed; the dependencies stay compiled.
claim_target_dir() {
  local stamp="$CARGO_TARGET_DIR/.iam-sentinel-checkout"
  if [[ -d "$CARGO_TARGET_DIR" && "$(cat "$stamp" 2>/dev/null)" != "$ROOT" ]]; then
    log "$CARGO_TARGET_DIR was last built from another checkout: rebuilding this crate (its dependencies stay)"
    cargo clean --quiet --manifest-path "$ROOT/Cargo.toml" -p iam-sentinel
    cargo clean --quiet --manifest-path "$ROOT/Cargo.toml" -p iam-sentinel --release
  fi
  mkdir -p "$CARGO_TARGET_DIR"
  printf '%s\n' "$ROOT" > "$stamp"
}
claim_target_dir
