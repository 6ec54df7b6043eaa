# Shared set-up for the integration suites: repo root, bats libraries, a scratch root,
# a registry of what a suite started (so teardown stops exactly that), and logged runs.
# Integration suites run as root against real programs; nothing here is a stub.

PGB_HELPERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PGB_REPO_ROOT="$(cd "${PGB_HELPERS_DIR}/../../.." && pwd)"
export PGB_HELPERS_DIR PGB_REPO_ROOT

# bats-support/bats-assert: the project's node_modules first, Debian's packages second.
pgb_load_bats_libs() {
  local lib dir
  for lib in bats-support bats-assert; do
    for dir in "${PGB_REPO_ROOT}/node_modules/${lib}" "/usr/lib/bats/${lib}"; do
      if [[ -f "${dir}/load.bash" ]]; then
        # shellcheck disable=SC1091
        source "${dir}/load.bash"
        continue 2
      fi
    done
    printf 'integration helpers: %s not found (npm ci, or apt-get install %s)\n' "${lib}" "${lib}" >&2
    return 1
  done
}

pgb_require_root() {
  if [[ "${EUID}" -ne 0 ]]; then
    printf 'integration suites mount tmpfs and start PostgreSQL: run them as root\n' >&2
    return 1
  fi
}

# pgb_ensure_pkg COMMAND DEBIAN_PACKAGE: installs the package when the command is missing.
pgb_ensure_pkg() {
  local cmd="$1" pkg="$2"
  command -v "${cmd}" >/dev/null 2>&1 && return 0
  { printf '# installing %s (for %s)\n' "${pkg}" "${cmd}" >&3; } 2>/dev/null || true
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkg}" >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkg}" >/dev/null
  fi
  command -v "${cmd}" >/dev/null 2>&1
}

# pgb_scratch_init: creates the suite's scratch root PGB_T (mktemp -d). The config schema only
# accepts paths of [A-Za-z0-9._/-], so the path is checked. 0711: the postgres user must be able
# to reach its data directories below it, nobody may list it.
pgb_scratch_init() {
  PGB_T="$(mktemp -d "${TMPDIR:-/tmp}/pgb-itest.XXXXXXXX")"
  if [[ ! "${PGB_T}" =~ ^/[A-Za-z0-9._/-]+$ ]]; then
    printf 'scratch dir %s has characters the config schema refuses; set TMPDIR\n' "${PGB_T}" >&2
    rm -rf -- "${PGB_T}"
    return 1
  fi
  chmod 0711 "${PGB_T}"
  mkdir -p "${PGB_T}/logs" "${PGB_T}/tmp"
  : >"${PGB_T}/.started"
  export PGB_T
}

# pgb_mark LABEL: a timestamped line in logs/timing.log (where a slow suite spends its time).
pgb_mark() {
  printf '%s %s\n' "$(date +%s.%N)" "$*" >>"${PGB_T}/logs/timing.log"
}

# The registry of started things: one "KIND ARG" line each, undone in reverse order. A pid (or a
# process group's leader) also has its start time noted: pids wrap within minutes on a busy
# machine (pid_max 32768), and a kill by a stale pid hit another suite's process once (a
# container's postmaster, so its container stopped). pgb_started_kill kills only the same process.
pgb_started_add() {
  printf '%s %s\n' "$1" "$2" >>"${PGB_T}/.started"
  case "$1" in
    pid | pgid) printf '%s %s\n' "$2" "$(pgb_proc_start "$2")" >>"${PGB_T}/.started.stime" ;;
  esac
}

# pgb_proc_start PID: its start time (clock ticks after boot, /proc/PID/stat field 22), or nothing.
pgb_proc_start() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  # Field 2 (the command) may hold spaces: count from the last ")".
  awk '{ print $20 }' <<<"${stat##*) }"
}

# pgb_started_kill KIND PID SIGNAL: sends SIGNAL to the registered pid or process group, unless
# that pid now belongs to a process started after it was registered (a wrapped pid: not ours;
# returns 1). A group whose leader is gone keeps its id until its last member ends: still ours.
pgb_started_kill() {
  local kind="$1" pid="$2" sig="$3" now noted
  now="$(pgb_proc_start "${pid}")"
  if [[ -n "${now}" ]]; then
    noted="$(awk -v p="${pid}" '$1 == p { t = $2 } END { print t }' "${PGB_T}/.started.stime" 2>/dev/null)"
    [[ "${now}" == "${noted}" ]] || return 1
  fi
  case "${kind}" in
    pid) kill "-${sig}" "${pid}" 2>/dev/null || true ;;
    pgid) kill "-${sig}" -- "-${pid}" 2>/dev/null || true ;;
  esac
}

pgb_started_remove() {
  local kind="$1" arg="$2"
  grep -vxF "${kind} ${arg}" "${PGB_T}/.started" >"${PGB_T}/.started.new" || true
  mv -f "${PGB_T}/.started.new" "${PGB_T}/.started"
}

# pgb_setup_file_failed: true in teardown_file when setup_file did not finish. bats runs
# teardown_file then and puts its output into the TAP stream under "setup_file failed".
pgb_setup_file_failed() {
  [[ -n "${BATS_TEST_FILENAME:-}" && -z "${BATS_SETUP_FILE_COMPLETED:-}" ]]
}

# The last lines of every log of a set-up that failed: the servers', the scripts', nspawn's
# (not below other mounts: a container's root or a backup disk holds logs of its own).
pgb_report_failed_setup() {
  pgb_setup_file_failed || return 0
  local log
  printf 'setup_file did not finish; the logs it left:\n' >&2
  while IFS= read -r -d '' log; do
    pgb_tail_file "${log}" 30 >&2
  done < <(find "${PGB_T}" -xdev -maxdepth 4 -name '*.log' -type f -print0 2>/dev/null | sort -z)
}

# Stops everything the suite started (clusters, processes, mounts), newest first, then
# removes the scratch root. Safe to call twice and after a half-finished set-up.
pgb_teardown_all() {
  [[ -n "${PGB_T:-}" && -d "${PGB_T}" ]] || return 0
  pgb_report_failed_setup
  local kind arg
  while read -r kind arg; do
    case "${kind}" in
      pg) pg_cluster_stop "${arg}" || true ;;
      pid | pgid) pgb_started_kill "${kind}" "${arg}" KILL || true ;;
      mount) pgb_umount "${arg}" || true ;;
    esac
  done < <(tac "${PGB_T}/.started")
  # PGB_KEEP_LOGS=DIR keeps the run's logs (scripts' and servers') for a look after the suite.
  if [[ -n "${PGB_KEEP_LOGS:-}" ]]; then
    mkdir -p "${PGB_KEEP_LOGS}"
    cp -a "${PGB_T}/logs/." "${PGB_KEEP_LOGS}/" 2>/dev/null || true
    find "${PGB_T}" -maxdepth 3 -name '*.log' -not -path "${PGB_T}/logs/*" -exec cp -t "${PGB_KEEP_LOGS}/" {} + 2>/dev/null || true
  fi
  if findmnt -rn -o TARGET | grep -qF "${PGB_T}/"; then
    printf 'teardown: mounts left under %s; not removing it\n' "${PGB_T}" >&2
    return 1
  fi
  rm -rf -- "${PGB_T}"
}

# pgb_wait_for WHAT SECONDS DIAGNOSE CMD...: runs CMD (quietly) every 0.2 s until it succeeds,
# for at most SECONDS.
# On time-out it says what it waited for, runs DIAGNOSE (a function or command that prints
# what is needed to understand why, to stderr; "-" for none) and returns 1.
# Waits are on a state, bounded in minutes: a first run on a cold, loaded machine is slow.
pgb_wait_for() {
  local what="$1" seconds="$2" diagnose="$3" deadline
  shift 3
  deadline=$(( SECONDS + seconds ))
  while ! "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then
      printf 'timed out after %s s waiting for %s\n' "${seconds}" "${what}" >&2
      [[ "${diagnose}" == - ]] || "${diagnose}" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# pgb_user_gone USER [USERDEL_OPTS...]: USER does not exist, or userdel just removed it. userdel
# fails while another process holds the passwd lock or a session of the user is still ending.
pgb_user_gone() {
  local user="$1"
  shift
  ! getent passwd "${user}" >/dev/null || { userdel "$@" -- "${user}" && ! getent passwd "${user}" >/dev/null; }
}

# pgb_remove_user USER [USERDEL_OPTS...]: removes a test user, retrying for a minute; says so
# when it cannot.
pgb_remove_user() {
  pgb_wait_for "userdel of test user $1" 60 - pgb_user_gone "$@" ||
    printf 'teardown: could not remove test user %s\n' "$1" >&2
}

# pgb_require_stable_borg_host_id: Borg names its host "<fqdn>@<uuid.getnode()>", the MAC of an
# interface that has an IPv4 address. Where there is none (a network namespace with only lo),
# Python makes up a new node per process: every Borg process is then "another host", and Borg
# never breaks the stale lock a crashed Borg left (measured: the out-of-space tests time out on
# the lock). Refuse to run then, saying how to give the namespace such an interface.
pgb_require_stable_borg_host_id() {
  local probe='import uuid; print(uuid.getnode())'
  [[ -n "${BORG_HOST_ID:-}" ]] && return 0
  [[ "$(python3 -c "${probe}")" == "$(python3 -c "${probe}")" ]] && return 0
  printf '%s\n' "Borg's host id changes from one process to the next here (no interface with a MAC and an" \
    "IPv4 address: a network namespace with only lo?), so Borg cannot break its own stale locks." \
    "In the namespace, add one: ip link add pgb0 type veth peer name pgb1; ip link set pgb0 up;" \
    "ip link set pgb1 up; ip addr add 10.255.0.1/30 dev pgb0" >&2
  return 1
}

# pgb_cgroups_mount: `ip netns exec` mounts a fresh /sys in its own mount namespace, without the
# cgroup hierarchies that systemd-nspawn and dockerd need (nspawn: "Failed to determine whether
# the unified cgroups hierarchy is used: No medium found"). Mounts them again there, as PID 1's
# namespace has them (the same hierarchies; the mounts vanish with that namespace). A no-op
# where /sys/fs/cgroup is mounted, as on a machine's own namespaces.
pgb_cgroups_mount() {
  mountpoint -q /sys/fs/cgroup && return 0
  local src target fstype opts
  while read -r src target fstype opts _; do
    case "${fstype}" in
      tmpfs) [[ "${target}" == /sys/fs/cgroup ]] && mount -t tmpfs -o "${opts}" "${src}" "${target}" ;;
      cgroup | cgroup2)
        mkdir -p "${target}"
        mount -t "${fstype}" -o "${opts}" "${src}" "${target}"
        ;;
    esac
  done < <(grep -E '^[^ ]+ /sys/fs/cgroup(/[^ ]*)? (tmpfs|cgroup|cgroup2) ' /proc/1/mounts)
}

# pgb_sshd_privsep_dir: sshd's privilege separation directory, made when missing (the ssh service
# normally makes it) and never removed: suites of other runs on the same machine may have an sshd
# running, and without /run/sshd sshd resets every new connection before its banner (measured:
# "kex_exchange_identification: read: Connection reset by peer" in suites running side by side).
pgb_sshd_privsep_dir() {
  [[ -d /run/sshd ]] || install -d -m 0755 /run/sshd
}

# pgb_port_open PORT: something listens on 127.0.0.1:PORT.
pgb_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pgb_pid_gone PID: the process has exited (or never existed).
pgb_pid_gone() {
  ! kill -0 "$1" 2>/dev/null
}

# pgb_tail_file FILE [N]: the last N (40) lines of FILE, headed by its name, for diagnostics.
pgb_tail_file() {
  printf -- '--- last lines of %s ---\n' "$1"
  tail -n "${2:-40}" -- "$1" 2>&1
}

# pgb_run_logged NAME CMD...: runs CMD with stdout+stderr into logs/NAME.log; sets status and
# output like bats' run, without failing the test on a non-zero exit.
# shellcheck disable=SC2034 # status, output and PGB_LAST_LOG are read by the tests
pgb_run_logged() {
  local name="$1" log
  shift
  log="${PGB_T}/logs/${name}.log"
  status=0
  "$@" >"${log}" 2>&1 || status=$?
  output="$(cat "${log}")"
  PGB_LAST_LOG="${log}"
}

# Every line a generated script prints carries a UTC stamp and a level.
assert_log_lines_stamped() {
  local log="$1" bad
  bad="$(grep -vE '^\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\] \[(INFO| OK |WARN|ERR )\] ' "${log}" || true)"
  if [[ -n "${bad}" ]]; then
    printf 'lines of %s without a UTC stamp and level:\n%s\n' "${log}" "${bad}" >&2
    return 1
  fi
}

# Builds the pgb-gen CLI when dist/ is missing or older than src/ (templates are read at run time).
pgb_build_cli() {
  local main="${PGB_REPO_ROOT}/dist/cli/main.js"
  if [[ ! -f "${main}" ]] || [[ -n "$(find "${PGB_REPO_ROOT}/src" -newer "${main}" -name '*.ts' -print -quit)" ]]; then
    (cd "${PGB_REPO_ROOT}" && npm run --silent build)
  fi
}

# pgb_generate CONFIG OUTDIR: pgb-gen build.
pgb_generate() {
  pgb_build_cli
  node "${PGB_REPO_ROOT}/dist/cli/main.js" build -c "$1" -o "$2"
}

# expect_rc EXPECTED ACTUAL LOG: a script's exit status as expected, else the log's tail.
expect_rc() {
  local expected="$1" actual="$2" log="$3"
  if [[ "${actual}" != "${expected}" ]]; then
    printf 'exit status %s, expected %s\n' "${actual}" "${expected}" >&2
    pgb_tail_file "${log}" 60 >&2
    return 1
  fi
}

# assert_file_contains FILE REGEX: a line of FILE matches the basic regex (as bats-file's),
# else the file's tail.
assert_file_contains() {
  if ! grep -q -- "$2" "$1"; then
    printf 'no line of %s matches: %s\n' "$1" "$2" >&2
    pgb_tail_file "$1" 40 >&2
    return 1
  fi
}
