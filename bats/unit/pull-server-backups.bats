#!/usr/bin/env bats
# Unit suite of the generated pull-server-backups.sh (dev machine "devbox" pulling servers
# "alpha" and "beta"). rsync and ssh are PATH stubs that stand in for the network: the rsync stub
# runs the ssh command it was given with -e (so the ssh stub logs the options as ssh would get
# them) and then serves each server's files from a local tree, REMOTE/<host>/<module>/<path>
# (USER@HOST::MODULE/PATH, rsync's daemon over ssh), copying with the real rsync.

# Stub knobs are exported per test on purpose: each test runs in its own process.
# shellcheck disable=SC2030,SC2031

load helpers

setup_file() {
  ut_setup_file
}

teardown_file() {
  ut_teardown_file
}

# ssh stub: hosts in SSH_DOWN_HOSTS refuse the connection (rc 255).
make_ssh_stub() {
  # shellcheck disable=SC2016
  make_stub "${STUB_BIN}/ssh" '
dest="" port=""
while (( $# )); do
  case "$1" in
    -p) port="$2"; shift ;;
    -i | -o) shift ;;
    -*) ;;
    *) dest="$1"; break ;;
  esac
  shift
done
host="${dest#*@}"
if [[ " ${SSH_DOWN_HOSTS:-} " == *" ${host} "* ]]; then
  printf "ssh: connect to host %s port %s: Connection refused\n" "${host}" "${port}" >&2
  exit 255
fi'
}

# rsync stub: USER@HOST::MODULE/PATH is served from REMOTE/HOST/MODULE/PATH after the -e ssh
# command succeeded; any other form of source is an error (the server has only the daemon).
# --list-only of a missing path fails as rsync does (rc 23); hosts in RSYNC_FAIL_HOSTS fail the
# copy itself (rc 23) after the listing worked.
make_rsync_stub() {
  local real
  real="$(command -v rsync)"
  # shellcheck disable=SC2016
  make_stub "${STUB_BIN}/rsync" '
e="" list=0
opts=()
pos=()
while (( $# )); do
  case "$1" in
    -e) e="$2"; shift ;;
    --list-only) list=1 ;;
    -*) opts+=("$1") ;;
    *) pos+=("$1") ;;
  esac
  shift
done
src="${pos[0]}"
if [[ "${src}" != *::* ]]; then
  printf "rsync stub: not a daemon-over-ssh source: %s\n" "${src}" >&2
  exit 1
fi
userhost="${src%%::*}"
rel="${src#*::}"
host="${userhost#*@}"
read -ra ssh_cmd <<<"${e:-ssh}"
if ! "${ssh_cmd[@]}" "${userhost}" rsync --server --daemon .; then
  printf "rsync: connection unexpectedly closed (0 bytes received so far) [Receiver]\n" >&2
  exit 255
fi
remote="${REMOTE}/${host}/${rel}"
if (( list )); then
  if [[ ! -e "${remote}" ]]; then
    printf "rsync: [sender] link_stat \"%s\" failed: No such file or directory (2)\n" "${rel}" >&2
    exit 23
  fi
  printf "%s\n" "${rel}"
  exit 0
fi
if [[ " ${RSYNC_FAIL_HOSTS:-} " == *" ${host} "* ]]; then
  printf "rsync: write failed: No space left on device (28)\n" >&2
  exit 23
fi
exec '"$(printf '%q' "${real}")"' "${opts[@]}" "${remote}" "${pos[1]}"'
}

setup() {
  ut_setup
  ut_build
  make_ssh_stub
  make_rsync_stub
  export REMOTE="${D}/remote"
  ut_secret "${SSH_KEY}" 'PRIVATE KEY'
  ut_secret "${KNOWN_HOSTS}" '[alpha.example]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA'
  # Both serve the modules artifacts and config; alpha's trees are postgres/ and config/ under its
  # backup disk, beta's pg/ and settings/: that is where they land locally.
  remote_server alpha.example
  remote_server beta.example
}

teardown() {
  ut_teardown
}

# remote_server HOST: a mounted server side, with its sentinel, as its two modules.
remote_server() {
  local root="${REMOTE}/$1"
  set -- "$1" artifacts config
  mkdir -p "${root}/$2/basebackups/svc_a_basebackup_2024-01-01T02_00_00Z" "${root}/$2/wal/svc_a" "${root}/$3/etc/app"
  printf '%s\n' "$1 base" >"${root}/$2/basebackups/svc_a_basebackup_2024-01-01T02_00_00Z/PG_VERSION"
  printf 'wal\n' >"${root}/$2/wal/svc_a/000000010000000000000001"
  printf 'setting=%s\n' "$1" >"${root}/$3/etc/app/app.conf"
  : >"${root}/$2/.pgb-sentinel"
}

# local_copy SERVER REL: what an earlier pull left on the dev machine.
local_copy() {
  mkdir -p "${LOCAL_BASE}/$1/$2/basebackups/svc_a_basebackup_2023-12-31T02_00_00Z"
  printf 'older backup\n' >"${LOCAL_BASE}/$1/$2/basebackups/svc_a_basebackup_2023-12-31T02_00_00Z/PG_VERSION"
}

@test "success: each server's artifacts and settings mirrored into localBase/<server>/, stale copies removed" {
  local_copy alpha postgres
  run bash "${PULL_SCRIPT}"
  assert_success
  assert_output --partial "[alpha] pull complete"
  assert_output --partial "[beta] pull complete"
  assert_output --partial "devbox: all 2 server(s) pulled"
  run diff -r "${REMOTE}/alpha.example/artifacts" "${LOCAL_BASE}/alpha/postgres"
  assert_success
  run diff -r "${REMOTE}/alpha.example/config" "${LOCAL_BASE}/alpha/config"
  assert_success
  run diff -r "${REMOTE}/beta.example/artifacts" "${LOCAL_BASE}/beta/pg"
  assert_success
  run diff -r "${REMOTE}/beta.example/config" "${LOCAL_BASE}/beta/settings"
  assert_success
  # With the sentinel there, the mirror deletes what the server pruned.
  assert [ ! -e "${LOCAL_BASE}/alpha/postgres/basebackups/svc_a_basebackup_2023-12-31T02_00_00Z" ]
  assert_equal "$(stat -c '%a' "${LOCAL_BASE}")" 700
  # The sentinel was checked before the first --delete of each server.
  run grep -nE -- "(--list-only|--delete)" "${STUB_LOG}/rsync.log"
  assert_regex "${lines[0]}" "--list-only .* jared@alpha\.example::artifacts/\.pgb-sentinel$"
  assert_regex "${lines[1]}" "--delete .* jared@alpha\.example::artifacts/ ${LOCAL_BASE}/alpha/postgres/$"
}

@test "pinned host keys: every ssh gets our key, StrictHostKeyChecking=yes and our known_hosts; no --rsync-path" {
  run bash "${PULL_SCRIPT}"
  assert_success
  local calls
  calls="$(stub_count rsync)"
  assert [ "${calls}" -ge 6 ]
  # What rsync was told to run, on every call...
  assert_equal "$(stub_count rsync " -e ssh -p (2222|2223) -i ${SSH_KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${KNOWN_HOSTS} -o ConnectTimeout=[0-9]+ ")" "${calls}"
  # ... and what ssh got, word by word, with each server's own port and user.
  assert_equal "$(stub_count ssh)" "${calls}"
  assert_equal "$(stub_count ssh "^-p 2222 -i ${SSH_KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${KNOWN_HOSTS} -o ConnectTimeout=[0-9]+ jared@alpha\.example ")" "$((calls / 2))"
  assert_equal "$(stub_count ssh "^-p 2223 -i ${SSH_KEY} .* puller@beta\.example ")" "$((calls / 2))"
  assert_equal "$(stub_count rsync '--rsync-path')" 0
  assert_equal "$(stub_count ssh 'StrictHostKeyChecking=(no|accept-new)')" 0
  # Every remote path names one of the server's two rsync modules (daemon over ssh), never a path.
  assert_equal "$(stub_count rsync ' [a-z]+@[a-z.]+::(artifacts|config)/')" "${calls}"
  assert_equal "$(stub_count rsync ' [a-z]+@[a-z.]+:[^:]')" 0
}

@test "sentinel missing (server disk unmounted): no rsync with --delete, the local copy untouched, others pulled, exit 1" {
  rm -rf -- "${REMOTE}/alpha.example/artifacts" "${REMOTE}/alpha.example/config"
  mkdir -p "${REMOTE}/alpha.example/artifacts"
  local_copy alpha postgres
  local before
  before="$(ut_tree "${LOCAL_BASE}/alpha")"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "[alpha] no .pgb-sentinel on the server (backup disk unmounted, or server unreachable); NOT pulling, local copy left untouched"
  assert_output --partial "devbox: 1 of 2 server(s) failed"
  assert_equal "$(stub_count rsync '--delete.*alpha\.example')" 0
  assert_equal "$(ut_tree "${LOCAL_BASE}/alpha")" "${before}"
  assert [ -f "${LOCAL_BASE}/alpha/postgres/basebackups/svc_a_basebackup_2023-12-31T02_00_00Z/PG_VERSION" ]
  # beta was still pulled.
  run diff -r "${REMOTE}/beta.example/artifacts" "${LOCAL_BASE}/beta/pg"
  assert_success
}

@test "sentinel missing while other files are there: still no --delete" {
  rm -f -- "${REMOTE}/alpha.example/artifacts/.pgb-sentinel"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_equal "$(stub_count rsync '--delete.*alpha\.example')" 0
  assert [ ! -e "${LOCAL_BASE}/alpha/postgres" ]
}

@test "one server unreachable: the others are still pulled, its local copy untouched, exit 1" {
  export SSH_DOWN_HOSTS=alpha.example
  local_copy alpha postgres
  local before
  before="$(ut_tree "${LOCAL_BASE}/alpha")"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "ssh: connect to host alpha.example port 2222: Connection refused"
  assert_output --partial "[alpha] no .pgb-sentinel on the server"
  assert_output --partial "[beta] pull complete"
  assert_output --partial "devbox: 1 of 2 server(s) failed"
  assert_equal "$(stub_count rsync '--delete.*alpha\.example')" 0
  assert_equal "$(ut_tree "${LOCAL_BASE}/alpha")" "${before}"
  run diff -r "${REMOTE}/beta.example/config" "${LOCAL_BASE}/beta/settings"
  assert_success
}

@test "every server unreachable: nothing pulled, nothing deleted, exit 1" {
  export SSH_DOWN_HOSTS="alpha.example beta.example"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "devbox: 2 of 2 server(s) failed"
  assert_equal "$(stub_count rsync '--delete')" 0
}

@test "a failing copy fails that server alone, exit 1" {
  export RSYNC_FAIL_HOSTS=alpha.example
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "[alpha] pulling artifacts failed"
  assert_output --partial "[beta] pull complete"
  run diff -r "${REMOTE}/beta.example/artifacts" "${LOCAL_BASE}/beta/pg"
  assert_success
}

@test "a server without system settings: artifacts pulled, settings skipped, exit 0" {
  rm -rf -- "${REMOTE}/beta.example/config"
  run bash "${PULL_SCRIPT}"
  assert_success
  assert_output --partial "[beta] no system settings on the server (config); skipped"
  assert [ ! -e "${LOCAL_BASE}/beta/settings" ]
  run diff -r "${REMOTE}/beta.example/artifacts" "${LOCAL_BASE}/beta/pg"
  assert_success
}

@test "lock held by another run: exits 75 at once, no rsync" {
  ut_hold_lock "${PULL_LOCK_FILE}"
  run bash "${PULL_SCRIPT}"
  assert_failure 75
  assert_output --partial "another run holds ${PULL_LOCK_FILE}"
  assert_equal "$(stub_count rsync)" 0
}

@test "pull key missing or known_hosts empty: refused before any connection" {
  rm -f -- "${SSH_KEY}"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "pull key missing: ${SSH_KEY}"
  assert_equal "$(stub_count rsync)" 0

  ut_secret "${SSH_KEY}" 'PRIVATE KEY'
  : >"${KNOWN_HOSTS}"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "known_hosts missing or empty: ${KNOWN_HOSTS}"
  assert_equal "$(stub_count rsync)" 0
}
