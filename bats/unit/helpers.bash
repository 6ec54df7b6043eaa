# Shared helpers of the bats unit suites for pg_backup_all.sh, borg_pg_artifacts.sh and
# pull-server-backups.sh: a config writer that points every path into a scratch root, a build
# of that config with the real generator, and stubs (first on PATH, or under a fake pgBinRoot)
# that log their argv and exit with the status the test chooses.
#
# Layout, per suite file (setup_file): UT_ROOT (mktemp -d) holds builds/ (one build per distinct
# config, reused by every test of the file) and d/ (every path the config names; wiped before
# each test). Per test (setup): BATS_TEST_TMPDIR holds bin/ (stubs on PATH), log/ (one argv log
# per stub: one line per call, the arguments joined by spaces) and state/ (stub knobs).

# No subshells while loading: every test of a suite loads this file again (and the machine a
# suite runs on may be busy), so paths come from parameter expansion.
UT_HELPERS_DIR="${BASH_SOURCE[0]%/*}"
[[ "${UT_HELPERS_DIR}" == /* ]] || UT_HELPERS_DIR="${PWD}/${UT_HELPERS_DIR}"
UT_REPO_ROOT="${UT_HELPERS_DIR}/../.."

# bats-support/bats-assert: the project's node_modules first, Debian's packages second.
# Their src/*.bash are sourced directly (load.bash runs dirname once per file).
ut_load_libs() {
  local lib dir f
  for lib in bats-support bats-assert; do
    for dir in "${UT_REPO_ROOT}/node_modules/${lib}" "/usr/lib/bats/${lib}"; do
      if [[ -f "${dir}/src/assert.bash" || -f "${dir}/src/output.bash" ]]; then
        for f in "${dir}"/src/*.bash; do
          # shellcheck disable=SC1090
          source "${f}"
        done
        continue 2
      elif [[ -f "${dir}/load.bash" ]]; then
        # shellcheck disable=SC1091
        source "${dir}/load.bash"
        continue 2
      fi
    done
    printf 'unit helpers: %s not found (npm ci, or apt-get install %s)\n' "${lib}" "${lib}" >&2
    return 1
  done
}
ut_load_libs

# ---- per file -----------------------------------------------------------------------------

# ut_setup_file: the scratch root of this suite file. The schema accepts only [A-Za-z0-9._/-]
# in paths, so the root is checked; the generator must be built (npm ci / npm run build).
ut_setup_file() {
  if [[ "${EUID}" -ne 0 ]]; then
    printf 'the generated scripts require root: run the unit suites as root\n' >&2
    return 1
  fi
  if [[ ! -f "${UT_REPO_ROOT}/dist/cli/main.js" ]]; then
    printf 'dist/cli/main.js missing: run npm run build first\n' >&2
    return 1
  fi
  UT_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/pgb-unit.XXXXXXXX")"
  if [[ ! "${UT_ROOT}" =~ ^/[A-Za-z0-9._/-]+$ ]]; then
    printf 'scratch dir %s has characters the config schema refuses; set TMPDIR\n' "${UT_ROOT}" >&2
    rm -rf -- "${UT_ROOT}"
    return 1
  fi
  mkdir -p "${UT_ROOT}/builds"
  export UT_ROOT
  export UT_D="${UT_ROOT}/d"
}

ut_teardown_file() {
  if [[ -n "${UT_ROOT:-}" && -d "${UT_ROOT}" ]]; then
    rm -rf -- "${UT_ROOT}"
  fi
}

# ---- per test -----------------------------------------------------------------------------

# ut_setup: an empty data tree, the stub dirs first on PATH, and the paths the config names
# exported (D is the data root every configured path lives under).
ut_setup() {
  D="${UT_D}"
  rm -rf -- "${D}"
  STUB_BIN="${BATS_TEST_TMPDIR}/bin"
  STUB_LOG="${BATS_TEST_TMPDIR}/log"
  STUB_STATE="${BATS_TEST_TMPDIR}/state"
  mkdir -p "${D}" "${STUB_BIN}" "${STUB_LOG}" "${STUB_STATE}"
  : >"${STUB_STATE}/mounts"
  PATH="${STUB_BIN}:${PATH}"
  export D STUB_BIN STUB_LOG STUB_STATE PATH

  # Server "alpha" (the one the server suites run) and "beta"; dev "devbox" pulls both.
  export BACKUP_MOUNT="${D}/backup"
  export ARTIFACTS="${BACKUP_MOUNT}/postgres"
  export BASE_DIR="${ARTIFACTS}/basebackups"
  export WAL_DIR="${ARTIFACTS}/wal"
  export CONFIG_ARTIFACTS="${BACKUP_MOUNT}/config"
  export SENTINEL="${ARTIFACTS}/.pgb-sentinel"
  export LOCK_FILE="${D}/run/alpha.lock"
  export PG_BIN_ROOT="${D}/pgbin"
  export PRIMARY_REPO="${BACKUP_MOUNT}/borg"
  export EXT_MOUNT="${D}/usb"
  export EXT_REPO="${EXT_MOUNT}/borg"
  export PASS_FILE="${D}/secrets/pg-borg.env"
  export REPL_PASS_FILE="${D}/secrets/repl_password"
  export HOST_CONFIG="${D}/hostcfg"
  export LOCAL_BASE="${D}/upload"
  export SSH_KEY="${D}/ssh/pull_ed25519"
  export KNOWN_HOSTS="${D}/ssh/known_hosts"
  export PULL_LOCK_FILE="${D}/run/pull.lock"
  export REPL_USER="repl_backup"
  export ARCHIVE_PREFIX="alpha-pg-artifacts-"
}

ut_teardown() {
  ut_release_lock
}

# ---- the config and its build -------------------------------------------------------------

# ut_write_config FILE: the test config. Knobs (environment, with defaults):
#   UT_SERVICES "name:port:pgVersion ..."   UT_RAW_DAYS   UT_PARALLEL   UT_CONFIG_PATHS ("p ...")
#   UT_EXT_MAX_PRUNE   UT_EXT_RESERVE   UT_EXT_WARN_FREE   UT_RESTORE_JOBS   UT_RAW_REUSE   UT_REUSED_CHECKSUMS (default: the schema's)
#   UT_DEV_MAX_PULL   UT_DEV_RESERVE (default 0)   UT_DEV_KEEP ("keepBackups:keepDays")   UT_DEV_PULL_BASIS   UT_DEV_PULL_COMPRESS of the dev
#   UT_TOOLS_IMAGE (an image: alpha's services are its containers, tools: image)
#   UT_NOTIFY (non-empty: alpha's monitoring.notify, see below; both hosts' textfiles in the scratch root)
ut_write_config() {
  local file="$1" spec name port version p
  {
    printf 'version: 1\nservers:\n'
    printf '  - name: alpha\n'
    printf '    host: alpha.example\n'
    printf '    ssh: { port: 2222, user: jared }\n'
    printf '    paths:\n'
    printf '      backupMount: %s\n' "${BACKUP_MOUNT}"
    printf '      artifacts: %s\n' "${ARTIFACTS}"
    printf '      configArtifacts: %s\n' "${CONFIG_ARTIFACTS}"
    printf '      lockFile: %s\n' "${LOCK_FILE}"
    printf '      pgBinRoot: %s\n' "${PG_BIN_ROOT}"
    printf '    repos:\n'
    printf '      primary: %s\n' "${PRIMARY_REPO}"
    printf '      external:\n'
    printf '        mount: %s\n' "${EXT_MOUNT}"
    printf '        path: %s\n' "${EXT_REPO}"
    printf '        warnFreeBytes: %s\n' "${UT_EXT_WARN_FREE:-0}"
    printf '        maxPruneIterations: %s\n' "${UT_EXT_MAX_PRUNE:-3}"
    printf '        reserveBytes: %s\n' "${UT_EXT_RESERVE:-1048576}"
    printf '    borg: { compression: "zstd,3", passphraseFile: %s, lockWait: 30 }\n' "${PASS_FILE}"
    printf '    replication: { user: %s, passwordFile: %s }\n' "${REPL_USER}" "${REPL_PASS_FILE}"
    printf '    retention: { rawDays: %s, keepDaily: 7, keepWeekly: 4, keepMonthly: 6 }\n' "${UT_RAW_DAYS:-3}"
    printf '    parallelJobs: %s\n' "${UT_PARALLEL:-2}"
    if [[ -n "${UT_RESTORE_JOBS:-}" ]]; then printf '    restoreJobs: %s\n' "${UT_RESTORE_JOBS}"; fi
    if [[ -n "${UT_RAW_REUSE:-}" ]]; then printf '    rawReuse: %s\n' "${UT_RAW_REUSE}"; fi
    if [[ -n "${UT_REUSED_CHECKSUMS:-}" ]]; then printf '    reusedChecksums: %s\n' "${UT_REUSED_CHECKSUMS}"; fi
    printf '    configPaths: ['
    local sep=''
    for p in ${UT_CONFIG_PATHS-${HOST_CONFIG}}; do
      printf '%s%s' "${sep}" "${p}"
      sep=', '
    done
    printf ']\n'
    printf '    services:\n'
    for spec in ${UT_SERVICES:-svc_a:5433:15 svc_b:5434:15}; do
      IFS=: read -r name port version <<<"${spec}"
      if [[ -n "${UT_TOOLS_IMAGE:-}" ]]; then
        printf '      - { name: %s, port: %s, pgVersion: %s, image: %s, tools: image }\n' "${name}" "${port}" "${version}" "${UT_TOOLS_IMAGE}"
      else
        printf '      - { name: %s, port: %s, pgVersion: %s }\n' "${name}" "${port}" "${version}"
      fi
    done
    # UT_NOTIFY: alpha's monitoring with a webhook and a dead man's switch (URL files in secrets/).
    if [[ -n "${UT_NOTIFY:-}" ]]; then
      printf '    monitoring:\n      textfileDir: %s/textfile\n' "${D}"
      printf '      notify: { webhookUrlFile: %s/secrets/webhook.url, deadManUrlFile: %s/secrets/deadman.url }\n' "${D}" "${D}"
    fi
    printf '  - name: beta\n'
    printf '    host: beta.example\n'
    printf '    ssh: { port: 2223, user: puller }\n'
    printf '    paths:\n'
    printf '      backupMount: %s/beta\n' "${D}"
    printf '      artifacts: %s/beta/pg\n' "${D}"
    printf '      configArtifacts: %s/beta/settings\n' "${D}"
    printf '      lockFile: %s/run/beta.lock\n' "${D}"
    printf '    repos: { primary: %s/beta/borg, external: null }\n' "${D}"
    printf '    services:\n'
    printf '      - { name: svc_z, port: 5440, pgVersion: 15 }\n'
    printf 'devs:\n'
    printf '  - name: devbox\n'
    printf '    pullFrom: [alpha, beta]\n'
    printf '    localBase: %s\n' "${LOCAL_BASE}"
    printf '    sshKey: %s\n' "${SSH_KEY}"
    printf '    knownHosts: %s\n' "${KNOWN_HOSTS}"
    printf '    lockFile: %s\n' "${PULL_LOCK_FILE}"
    printf '    pgBinRoot: %s\n' "${PG_BIN_ROOT}"
    if [[ -n "${UT_DEV_MAX_PULL:-}" ]]; then printf '    maxPullBytes: %s\n' "${UT_DEV_MAX_PULL}"; fi
    if [[ -n "${UT_DEV_PULL_BASIS:-}" ]]; then printf '    pullBasis: %s\n' "${UT_DEV_PULL_BASIS}"; fi
    if [[ -n "${UT_DEV_PULL_COMPRESS:-}" ]]; then printf '    pullCompress: %s\n' "${UT_DEV_PULL_COMPRESS}"; fi
    printf '    reserveBytes: %s\n' "${UT_DEV_RESERVE:-0}"
    if [[ -n "${UT_DEV_KEEP:-}" ]]; then printf '    retention: { keepBackups: %s, keepDays: %s }\n' "${UT_DEV_KEEP%:*}" "${UT_DEV_KEEP#*:}"; fi
    # UT_NOTIFY: the dev's textfiles in the scratch root too.
    if [[ -n "${UT_NOTIFY:-}" ]]; then printf '    monitoring: { textfileDir: %s/textfile-dev }\n' "${D}"; fi
  } >"${file}"
}

# ut_build: renders the config of the current knobs with the real generator and sets
# BACKUP_SCRIPT, BORG_SCRIPT and PULL_SCRIPT. One build per distinct set of knobs in a suite
# file (the config is a function of the knobs and the file's scratch root), reused by every test.
ut_build() {
  local key out cfg
  key="s=${UT_SERVICES:-}_r=${UT_RAW_DAYS:-}_p=${UT_PARALLEL:-}_c=${UT_CONFIG_PATHS-default}"
  key+="_m=${UT_EXT_MAX_PRUNE:-}_v=${UT_EXT_RESERVE:-}_w=${UT_EXT_WARN_FREE:-}_j=${UT_RESTORE_JOBS:-}_u=${UT_RAW_REUSE:-}_uc=${UT_REUSED_CHECKSUMS:-}"
  key+="_dm=${UT_DEV_MAX_PULL:-}_dr=${UT_DEV_RESERVE:-}_dk=${UT_DEV_KEEP:-}_db=${UT_DEV_PULL_BASIS:-}_dz=${UT_DEV_PULL_COMPRESS:-}"
  key+="_n=${UT_NOTIFY:-}_ti=${UT_TOOLS_IMAGE:-}"
  out="${UT_ROOT}/builds/${key//[^A-Za-z0-9._=-]/+}"
  if [[ ! -d "${out}" ]]; then
    cfg="${out}.yaml"
    ut_write_config "${cfg}"
    if ! node "${UT_REPO_ROOT}/dist/cli/main.js" build -c "${cfg}" -o "${out}.part" >"${out}.log" 2>&1; then
      cat "${out}.log" >&2
      rm -rf -- "${out}.part"
      return 1
    fi
    mv -T -- "${out}.part" "${out}"
  fi
  BACKUP_SCRIPT="${out}/alpha/root/usr/local/sbin/pg_backup_all.sh"
  BORG_SCRIPT="${out}/alpha/root/usr/local/sbin/borg_pg_artifacts.sh"
  PULL_SCRIPT="${out}/devbox/root/usr/local/sbin/pull-server-backups.sh"
  export BACKUP_SCRIPT BORG_SCRIPT PULL_SCRIPT
}

# ut_call SCRIPT FUNCTION [ARGS...]: sources the script (its main guard keeps main from running)
# in a child bash and calls one function; use with `run`.
ut_call() {
  bash -c 'source "$1"; shift; "$@"' ut_call "$@"
}

# ---- stubs ----------------------------------------------------------------------------------

# make_stub PATH [BODY] [LOG_NAME]: an executable PATH that appends its argv (one line, the
# arguments joined by spaces) to STUB_LOG/LOG_NAME.log (default: the file name), then runs BODY
# (default: exit 0). BODY is bash; it sees the arguments as "$@" and STUB_LOG/STUB_STATE.
make_stub() {
  local path="$1" body="${2:-exit 0}" log_name="${3:-}"
  [[ -n "${log_name}" ]] || log_name="${path##*/}"
  [[ -d "${path%/*}" ]] || mkdir -p "${path%/*}"
  {
    printf '#!/usr/bin/env bash\n'
    printf 'STUB_LOG=%q\nSTUB_STATE=%q\n' "${STUB_LOG}" "${STUB_STATE}"
    # shellcheck disable=SC2016
    printf 'printf '\''%%s\\n'\'' "$*" >>"${STUB_LOG}/%s.log"\n' "${log_name}"
    printf '%s\n' "${body}"
  } >"${path}"
  chmod 0755 "${path}"
}

# stub_status NAME RC [MESSAGE]: a PATH stub that prints MESSAGE on stderr and exits RC.
stub_status() {
  local name="$1" rc="$2" msg="${3:-}" body=""
  if [[ -n "${msg}" ]]; then
    body="printf '%s\\n' $(printf '%q' "${msg}") >&2"$'\n'
  fi
  make_stub "${STUB_BIN}/${name}" "${body}exit ${rc}"
}

# stub_calls NAME: the argv log of a stub (empty when it was never called).
stub_calls() {
  if [[ -f "${STUB_LOG}/$1.log" ]]; then
    printf '%s\n' "$(<"${STUB_LOG}/$1.log")"
  fi
}

# stub_count NAME [PATTERN]: how many calls (matching the extended regex PATTERN).
stub_count() {
  if [[ -f "${STUB_LOG}/$1.log" ]]; then
    grep -cE -- "${2:-.}" "${STUB_LOG}/$1.log" || true
  else
    printf '0\n'
  fi
}

# findmnt stub: answers `findmnt ... --mountpoint DIR` from STUB_STATE/mounts ("DIR FSTYPE"
# lines; set with ut_mount); a directory not listed prints nothing, as for a bare mount point.
make_findmnt_stub() {
  # shellcheck disable=SC2016
  make_stub "${STUB_BIN}/findmnt" '
mp=""
while (( $# )); do
  if [[ "$1" == "--mountpoint" ]]; then mp="$2"; shift; fi
  shift
done
[[ -n "${mp}" ]] || exit 1
found=1
while read -r dir fstype; do
  if [[ "${dir}" == "${mp}" ]]; then printf "%s\n" "${fstype}"; found=0; fi
done <"${STUB_STATE}/mounts"
exit "${found}"'
}

# ut_mount DIR [FSTYPE...]: findmnt reports DIR mounted with these types (default ext4);
# `ut_mount DIR autofs` is an automount point whose filesystem is not mounted.
ut_mount() {
  local dir="$1" t
  shift
  mkdir -p "${dir}"
  for t in "${@:-ext4}"; do
    printf '%s %s\n' "${dir}" "${t}" >>"${STUB_STATE}/mounts"
  done
}

ut_unmount() {
  local dir="$1"
  grep -v -F -x -e "${dir} ext4" -e "${dir} autofs" "${STUB_STATE}/mounts" >"${STUB_STATE}/mounts.new" || true
  mv -- "${STUB_STATE}/mounts.new" "${STUB_STATE}/mounts"
}

# ---- secrets and locks ----------------------------------------------------------------------

# ut_secret FILE CONTENT [MODE]: a root-owned secret file (mode 0600 unless told).
ut_secret() {
  local file="$1" content="$2" mode="${3:-0600}"
  [[ -d "${file%/*}" ]] || mkdir -p "${file%/*}"
  printf '%s\n' "${content}" >"${file}"
  chmod "${mode}" "${file}"
}

# ut_hold_lock FILE: this test's shell holds an flock on FILE (as a running script would)
# until ut_release_lock (teardown releases it too).
ut_hold_lock() {
  [[ -d "${1%/*}" ]] || mkdir -p "${1%/*}"
  exec 8>>"$1"
  flock -n 8
  UT_LOCK_HELD=1
}

ut_release_lock() {
  if [[ -n "${UT_LOCK_HELD:-}" ]]; then
    exec 8>&-
    UT_LOCK_HELD=""
  fi
}

# ut_tree DIR: every file below DIR with its sha256, sorted (to prove a tree untouched).
ut_tree() {
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
}

# ut_stamp OFFSET: the backup dir stamp of `date -d OFFSET` (e.g. '-4 days'), as the script writes it.
ut_stamp() {
  date -u -d "$1" +'%Y-%m-%dT%H_%M_%SZ'
}
