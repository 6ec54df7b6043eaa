#!/usr/bin/env bats
# The generated server scripts against the real programs they drive (issue 3): three PostgreSQL 15
# service containers (the bookworm test image, on --network host at 127.0.0.1 ports) prepared with
# the server README's section 5 as it stands, with tools: host (the host's PostgreSQL 15 client
# takes the base backups, as on a host whose distribution has the services' major); the backup
# disk and a small external drive as tmpfs mounts, real Borg repositories. Runs as root, in the
# suite's network namespace. The tests share one set of containers and build on each other in file
# order (a night's archive is what the restore test extracts).
#
#   bats bats/integration/nightly.bats

load 'helpers/load'

readonly RESTORE_PORT_A=55410
readonly RESTORE_PORT_B=55411

setup_file() {
  pgb_require_root
  pgb_ensure_pkg faketime faketime
  pgb_ensure_pkg borg borgbackup
  pgb_require_stable_borg_host_id
  export PGB_SERVICES="service_a:55401 service_b:55402 service_c:55403"
  export PGB_DOCKER=yes PGB_PG_VERSION=15 PGB_TOOLS=host
  export PGB_RAW_DAYS=1
  # The external drive keeps the config's default reserve; warn when it has less than 8 MiB beyond.
  export PGB_EXT_RESERVE=629145600
  export PGB_EXT_WARN_FREE=$((PGB_EXT_RESERVE + 8 * 1024 * 1024))
  pgb_server_setup
  local name pids=() pid
  while read -r name; do
    load_data "${name}" &
    pids+=("$!")
  done < <(pgb_service_names)
  for pid in "${pids[@]}"; do
    wait "${pid}"
  done
  pgb_mark setup: data loaded
}

setup() {
  pgb_mark "test: ${BATS_TEST_DESCRIPTION}"
}

# Each service's data: pgbench's tables, 1 MiB of random bytes, a small table of text.
load_data() {
  local name="$1"
  pgb_load_pgbench "${name}" 1
  pg_fill_random "${name}_pg" probe 1
  docker_psql "${name}_pg" -c "CREATE TABLE notes (id int PRIMARY KEY, body text)" \
    -c "INSERT INTO notes SELECT g, '${name} note ' || g FROM generate_series(1, 500) g" >/dev/null
}

teardown_file() {
  [[ -z "${PGB_T:-}" ]] || pgb_mark teardown
  docker_stop
  pgb_teardown_all
}

# Puts back what a failed test may have left: the backup disk attached, every container running,
# helper processes gone.
teardown() {
  if [[ -n "${PGB_T:-}" ]]; then
    if mountpoint -q "${PGB_T}/hold" 2>/dev/null; then
      pgb_reattach "${PGB_BACKUP_MOUNT}" "${PGB_T}/hold"
    fi
    local name kind arg
    while read -r name; do
      pgb_service_running "${name}" || {
        PGB_DIAG_CONTAINER="${name}_pg" docker_container_diagnose >&2
        pgb_service_start "${name}"
      }
    done < <(pgb_service_names)
    while read -r kind arg; do
      # The suite's dockerd outlives every test (teardown_file stops it).
      [[ "${arg}" != "${PGB_DOCKERD_PID:-}" ]] || continue
      pgb_started_kill "${kind}" "${arg}" KILL || true
      pgb_started_remove "${kind}" "${arg}"
    done < <(grep -E '^(pid|pgid) ' "${PGB_T}/.started" || true)
  fi
}

# ---- helpers of this file ---------------------------------------------------------------------

# digest TARGET: what the restore must find again (row counts and content checksums) in a service
# container (its name) or a restored cluster (its port).
digest() {
  local target="$1"
  printf 'accounts=%s\n' "$(pg_table_digest "${target}" pgbench_accounts aid)"
  printf 'branches=%s\n' "$(pg_table_digest "${target}" pgbench_branches bid)"
  printf 'probe=%s\n' "$(pg_table_digest "${target}" probe id)"
  printf 'notes=%s\n' "$(pg_table_digest "${target}" notes id)"
}

# fails CMD...: asserts that CMD fails (a bare "! CMD" does not fail a bats test).
fails() {
  if "$@"; then
    printf 'expected to fail: %s\n' "$*" >&2
    return 1
  fi
}

# expect_rc RC LOG: fails with the log when a script's exit status is not RC.
expect_rc() {
  local want="$1" got="$2" log="$3"
  if [[ "${got}" != "${want}" ]]; then
    printf 'exit status %s, expected %s; log %s:\n' "${got}" "${want}" "${log}" >&2
    cat "${log}" >&2
    return 1
  fi
}

# count_lines REGEX FILE
count_lines() {
  grep -cE -- "$1" "$2" || true
}

verify_backup() {
  "${PGB_PG_BIN}/pg_verifybackup" -q "$1"
}

# stamp_ago DAYS [HOURS]: a base backup stamp (as the script writes it) that long ago.
stamp_ago() {
  date -u -d "@$(($(date -u +%s) - $1 * 86400 - ${2:-0} * 3600))" +'%Y-%m-%dT%H_%M_%SZ'
}

archive_paths() {
  tborg list --format '{path}{NL}' "$1::$2"
}

all_promoted() {
  find "${PGB_BASE_DIR}" -mindepth 1 -maxdepth 1 -type d -name '*_basebackup_*' -printf '%f\n' | sort
}

# ---- the tests --------------------------------------------------------------------------------

# lock_held FILE: another process holds the flock on FILE.
lock_held() {
  ! flock -n "$1" true
}

# partial_backup_of SERVICE MIB: sets tmp_b to SERVICE's temp dir once it holds MIB MiB.
partial_backup_of() {
  tmp_b="$(find "${PGB_BASE_DIR}" -mindepth 1 -maxdepth 1 -type d -name ".tmp_$1_*" -print -quit)"
  [[ -n "${tmp_b}" ]] && (( $(du -sm "${tmp_b}" | cut -f1) >= $2 ))
}

# killed_run_state: the killed run's log and what is left of its process group (pgid).
killed_run_state() {
  pgb_tail_file "${PGB_T}/logs/killed.log"
  ps -f -g "${pgid}" || true
}

# group_gone PGID: no process is left in the process group.
group_gone() {
  [[ -z "$(ps -o pid= -g "$1")" ]]
}

@test "setup: replication only for the generated role, with its SCRAM password, by the generated pg_hba rules" {
  local port dest
  port="$(pg_service_port service_a)"
  run docker_psql service_a_pg -c "SELECT rolreplication, rolcanlogin, rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = '${PGB_REPL_USER}'"
  assert_success
  assert_output 't|t|t'
  dest="${PGB_T}/tmp/refused"
  # The superuser may not replicate over TCP: the generated reject rule.
  run env PGPASSWORD=irrelevant "${PGB_PG_BIN}/pg_basebackup" -h 127.0.0.1 -p "${port}" -U postgres -w -D "${dest}" -Fp
  assert_failure
  assert_output --partial 'pg_hba.conf rejects replication connection'
  # The role with a wrong password: SCRAM refuses it.
  run env PGPASSWORD=wrong-password "${PGB_PG_BIN}/pg_basebackup" -h 127.0.0.1 -p "${port}" -U "${PGB_REPL_USER}" -w -D "${dest}" -Fp
  assert_failure
  assert_output --partial 'password authentication failed'
  [[ ! -e "${dest}" ]]
}

@test "[1] nightly run: every base backup verified and promoted, one archive in each repo, one stamped log line per step" {
  local name
  while read -r name; do
    digest "${name}_pg" >"${PGB_T}/digest.${name}"
  done < <(pgb_service_names)

  pgb_nightly n1
  expect_rc 0 "${PGB_BACKUP_RC}" "${PGB_T}/logs/n1.backup.log"
  expect_rc 0 "${PGB_BORG_RC}" "${PGB_T}/logs/n1.borg.log"

  # Base backups: one per service, promoted, verified again here, nothing left in temp dirs.
  local backups promoted
  while read -r name; do
    backups="$(pgb_promoted "${name}")"
    assert_equal "$(wc -l <<<"${backups}")" 1
    promoted="${PGB_BASE_DIR}/${backups}"
    verify_backup "${promoted}"
    assert_equal "$(cat "${promoted}/PG_VERSION")" "${PGB_PG_VERSION}"
    [[ -f "${promoted}/backup_label" && -f "${promoted}/backup_manifest" ]]
    assert_equal "$(count_lines "\[ OK \] \[${name}\] base backup verified and promoted: ${promoted}$" "${PGB_T}/logs/n1.backup.log")" 1
    assert_equal "$(count_lines "\[INFO\] \[${name}\] base backup from 127\.0\.0\.1:$(pg_service_port "${name}") " "${PGB_T}/logs/n1.backup.log")" 1
  done < <(pgb_service_names)
  assert_equal "$(pgb_temp_dirs)" ""
  [[ -f "${PGB_ARTIFACTS}/.pgb-sentinel" ]]
  # configPaths copied with their full path.
  cmp "${PGB_HOST_CONFIG}/app.d/app.conf" "${PGB_CONFIG_ARTIFACTS}${PGB_HOST_CONFIG}/app.d/app.conf"

  # One archive of that night in each repository, holding every promoted backup and the settings.
  local primary external archive repo paths
  primary="$(pgb_borg_archives "${PGB_PRIMARY_REPO}")"
  external="$(pgb_borg_archives "${PGB_EXT_REPO}")"
  assert_equal "$(wc -l <<<"${primary}")" 1
  assert_equal "${external}" "${primary}"
  archive="${primary}"
  [[ "${archive}" == "${PGB_ARCHIVE_PREFIX}"* ]]
  for repo in "${PGB_PRIMARY_REPO}" "${PGB_EXT_REPO}"; do
    paths="$(archive_paths "${repo}" "${archive}")"
    while read -r name; do
      grep -qxF "${PGB_BASE_DIR#/}/$(pgb_promoted "${name}")/PG_VERSION" <<<"${paths}"
      grep -qxF "${PGB_BASE_DIR#/}/$(pgb_promoted "${name}")/backup_manifest" <<<"${paths}"
    done < <(pgb_service_names)
    grep -qxF "${PGB_CONFIG_ARTIFACTS#/}${PGB_HOST_CONFIG}/app.d/app.conf" <<<"${paths}"
    run grep -c '/\.tmp_' <<<"${paths}"
    assert_output 0
    # One line per Borg step.
    local step
    for step in created pruned compacted; do
      assert_equal "$(count_lines "\[ OK \] ${step} ${repo}( |::|$)" "${PGB_T}/logs/n1.borg.log")" 1
    done
    # borg check re-reads the repository: the weekly unit's work, never the night's.
    assert_equal "$(count_lines "checked ${repo}" "${PGB_T}/logs/n1.borg.log")" 0
  done

  # The weekly check (what pgb-borg-check.service runs) passes on both real repositories.
  pgb_run_script n1.check borg_pg_artifacts.sh check
  expect_rc 0 "${status}" "${PGB_T}/logs/n1.check.log"
  for repo in "${PGB_PRIMARY_REPO}" "${PGB_EXT_REPO}"; do
    assert_equal "$(count_lines "\[ OK \] checked ${repo}$" "${PGB_T}/logs/n1.check.log")" 1
  done
  assert_equal "$(pgb_borg_archives "${PGB_PRIMARY_REPO}")" "${primary}"

  # Logs: every line stamped in UTC with a level, no error, no secret.
  assert_log_lines_stamped "${PGB_T}/logs/n1.backup.log"
  assert_log_lines_stamped "${PGB_T}/logs/n1.borg.log"
  run grep -h '\[ERR \]' "${PGB_T}/logs/n1.backup.log" "${PGB_T}/logs/n1.borg.log" "${PGB_T}/logs/n1.check.log"
  assert_failure
  run grep -rhF -e "$(head -n 1 "${PGB_REPL_PASS_FILE}")" -e "${PGB_BORG_PASS}" "${PGB_T}/logs"
  assert_failure
}

@test "[7] restore: base backups extracted from each Borg repo start on a scratch port and hold the source's data" {
  local archive repo name port path strip dest datadir
  archive="$(pgb_borg_archives "${PGB_PRIMARY_REPO}" | tail -n 1)"
  [[ -n "${archive}" ]]
  mkdir -p "${PGB_T}/restore"
  chown postgres:postgres "${PGB_T}/restore"
  pg_sock_dir_make
  for spec in "service_a ${PGB_PRIMARY_REPO} ${RESTORE_PORT_A}" "service_b ${PGB_EXT_REPO} ${RESTORE_PORT_B}"; do
    read -r name repo port <<<"${spec}"
    path="$(archive_paths "${repo}" "${archive}" | grep -E "/basebackups/${name}_basebackup_[^/]+$")"
    [[ "$(wc -l <<<"${path}")" == 1 ]]
    strip="$(tr -cd '/' <<<"${path}" | wc -c)"
    dest="${PGB_T}/restore/${name}"
    mkdir -p "${dest}"
    (cd "${dest}" && tborg extract --strip-components "${strip}" "${repo}::${archive}" "${path}")
    datadir="${dest}/${path##*/}"
    verify_backup "${datadir}"
    chown -R postgres:postgres "${dest}"
    chmod 0700 "${datadir}"
    pg_cluster_start "${datadir}" "-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=$(pg_sock_dir)"
    # Started with the host's PostgreSQL 15 (tools: host: the host has the services' major).
    run digest "${port}"
    assert_success
    assert_output "$(cat "${PGB_T}/digest.${name}")"
    # Not a copy of an empty cluster: pgbench's 100000 rows are there.
    assert_line --index 0 --regexp '^accounts=100000\|[0-9a-f]{32}$'
    pg_cluster_stop "${datadir}"
  done
}

@test "[4] backup disk unmounted: both scripts refuse, nothing is written under the bare mount point" {
  local before
  before="$(all_promoted)"
  pgb_detach_keep "${PGB_BACKUP_MOUNT}" "${PGB_T}/hold"
  fails mountpoint -q "${PGB_BACKUP_MOUNT}"
  assert_equal "$(find "${PGB_BACKUP_MOUNT}" -mindepth 1 | wc -l)" 0

  pgb_run_script unmounted.backup pg_backup_all.sh
  assert_failure
  assert_output --partial "${PGB_BACKUP_MOUNT} is not a mounted filesystem"
  pgb_run_script unmounted.borg borg_pg_artifacts.sh all
  assert_failure
  assert_output --partial "${PGB_BACKUP_MOUNT} is not a mounted filesystem"
  # The bare mount point on the root disk stayed empty.
  assert_equal "$(find "${PGB_BACKUP_MOUNT}" -mindepth 1 | wc -l)" 0

  pgb_reattach "${PGB_BACKUP_MOUNT}" "${PGB_T}/hold"
  assert_equal "$(all_promoted)" "${before}"
}

@test "[5] a second run while another holds the lock: refused with exit 75 and a clear message, the first unharmed" {
  local before_backups before_archives holder
  before_backups="$(all_promoted)"
  before_archives="$(pgb_borg_archives "${PGB_PRIMARY_REPO}")"
  mkdir -p "$(dirname "${PGB_LOCK_FILE}")"
  # The holder: a process that has the lock on an fd of its own (no child inherits it).
  (exec 9>>"${PGB_LOCK_FILE}" && flock 9 && exec sleep 300) 3>&- &
  holder=$!
  pgb_started_add pid "${holder}"
  # Wait until the holder has the lock (a probe that wins the race only delays it).
  pgb_wait_for "the holder (pid ${holder}) to take ${PGB_LOCK_FILE}" 120 - lock_held "${PGB_LOCK_FILE}"

  pgb_script_cmd pg_backup_all.sh
  pgb_run_logged locked.backup timeout 60 "${PGB_CMD[@]}"
  assert_equal "${status}" 75
  assert_output --partial "another run holds ${PGB_LOCK_FILE}; refusing to start a second one"
  pgb_script_cmd borg_pg_artifacts.sh
  pgb_run_logged locked.borg timeout 60 "${PGB_CMD[@]}" all
  assert_equal "${status}" 75
  assert_output --partial "another run holds ${PGB_LOCK_FILE}"

  # The holder still runs and still holds the lock; nothing was started behind its back.
  kill -0 "${holder}"
  run flock -n "${PGB_LOCK_FILE}" true
  assert_failure
  assert_equal "$(all_promoted)" "${before_backups}"
  assert_equal "$(pgb_temp_dirs)" ""
  assert_equal "$(pgb_borg_archives "${PGB_PRIMARY_REPO}")" "${before_archives}"
  kill -TERM "${holder}"
  wait "${holder}" || true
  pgb_started_remove pid "${holder}"
  flock -n "${PGB_LOCK_FILE}" true
}

@test "[3] one service's container stopped: the others are backed up, nothing partial is promoted, exit non-zero" {
  local name new
  local -A before
  while read -r name; do
    before[${name}]="$(pgb_promoted "${name}")"
  done < <(pgb_service_names)
  pgb_service_stop service_c

  pgb_run_script stopped pg_backup_all.sh
  assert_equal "${status}" 1
  assert_output --partial '[service_c] container service_c_pg is not running (docker start service_c_pg)'
  assert_output --regexp 'finished with failures: 1 service\(s\) failed'
  assert_log_lines_stamped "${PGB_LAST_LOG}"

  for name in service_a service_b; do
    new="$(comm -13 <(printf '%s\n' "${before[${name}]}") <(pgb_promoted "${name}"))"
    assert_equal "$(wc -l <<<"${new}")" 1
    [[ -n "${new}" ]]
    verify_backup "${PGB_BASE_DIR}/${new}"
  done
  assert_equal "$(pgb_promoted service_c)" "${before[service_c]}"
  assert_equal "$(pgb_temp_dirs)" ""
  pgb_service_start service_c
}

@test "[6] SIGKILL mid-backup: nothing partial promoted; the next run removes the temp dir and succeeds" {
  local before_b pgid_file pgid tmp_b
  # A table big enough that service_b's base backup is still running when it is killed.
  pg_fill_compressible service_b_pg bulk 300
  before_b="$(pgb_promoted service_b)"
  pgid_file="${PGB_T}/tmp/killed.pgid"
  pgb_script_cmd pg_backup_all.sh
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' "${pgid_file}" "${PGB_CMD[@]}" \
    >"${PGB_T}/logs/killed.log" 2>&1 3>&- &
  pgb_wait_for "the killed run to write its process group id" 120 - test -s "${pgid_file}"
  pgid="$(cat "${pgid_file}")"
  pgb_started_add pgid "${pgid}"
  # Kill the whole run (script, its jobs, the host's pg_basebackup and its WAL streamer) once
  # service_b's temp dir holds part of the backup.
  tmp_b=""
  pgb_wait_for "service_b's temp dir to hold 20 MiB of its base backup" 300 \
    killed_run_state partial_backup_of service_b 20
  kill -KILL -- "-${pgid}"
  pgb_wait_for "process group ${pgid} to exit after SIGKILL" 120 killed_run_state group_gone "${pgid}"
  pgb_started_remove pgid "${pgid}"

  # Killed mid-backup: the partial copy stays a temp dir, never a promoted backup.
  [[ -n "${tmp_b}" && -d "${tmp_b}" ]]
  assert_equal "$(pgb_promoted service_b)" "${before_b}"
  local b
  for b in $(all_promoted); do
    verify_backup "${PGB_BASE_DIR}/${b}"
  done

  docker_psql service_b_pg -c 'DROP TABLE bulk' -c 'CHECKPOINT' >/dev/null
  pgb_run_script after-kill pg_backup_all.sh
  assert_success
  assert_output --partial "removing stale temp dir of an interrupted run: ${tmp_b}"
  assert_equal "$(pgb_temp_dirs)" ""
  local new
  new="$(comm -13 <(printf '%s\n' "${before_b}") <(pgb_promoted service_b))"
  assert_equal "$(wc -l <<<"${new}")" 1
  verify_backup "${PGB_BASE_DIR}/${new}"
}

@test "[8] retention: raw backups older than rawDays pruned, the newest good one kept however old; borg prune + compact shrink the repo" {
  # Age the raw backups by their names (the script reads the date from the name): all of
  # service_a and service_c's are days old; service_b's newest is 6 hours old (inside the window).
  local name backups n i stamp
  for name in service_a service_b service_c; do
    mapfile -t backups < <(pgb_promoted "${name}")
    n="${#backups[@]}"
    (( n >= 2 ))
    for i in "${!backups[@]}"; do
      if [[ "${name}" == service_b && "${i}" == "$((n - 1))" ]]; then
        stamp="$(stamp_ago 0 6)"
      else
        stamp="$(stamp_ago $((10 - i)))"
      fi
      mv -T "${PGB_BASE_DIR}/${backups[i]}" "${PGB_BASE_DIR}/${name}_basebackup_${stamp}"
    done
  done
  local aged_b_recent aged_c_newest
  aged_b_recent="$(pgb_promoted service_b | tail -n 1)"
  aged_c_newest="$(pgb_promoted service_c | tail -n 1)"
  # service_c cannot be backed up tonight: its newest good backup is days old and must stay.
  pgb_service_stop service_c

  pgb_run_script retention pg_backup_all.sh
  assert_equal "${status}" 1
  local a b c
  a="$(pgb_promoted service_a)"
  b="$(pgb_promoted service_b)"
  c="$(pgb_promoted service_c)"
  # service_a: only tonight's backup (a few seconds old) is left.
  assert_equal "$(wc -l <<<"${a}")" 1
  (( $(date -u +%s) - $(date -u -d "$(sed 's/^service_a_basebackup_//; s/_/:/g' <<<"${a}")" +%s) < 600 ))
  # service_b: the 6-hour-old one and tonight's.
  assert_equal "$(wc -l <<<"${b}")" 2
  assert_equal "$(head -n 1 <<<"${b}")" "${aged_b_recent}"
  # service_c: its newest good backup, days old, is kept; the older ones are gone.
  assert_equal "${c}" "${aged_c_newest}"
  verify_backup "${PGB_BASE_DIR}/${c}"
  assert_output --partial "[service_c] pruned raw base backup older than 1 day(s)"
  pgb_service_start service_c

  # Borg retention: older nights (archives with their own dates, unique data each) next to today's.
  local src day h
  day="$(date -u -d '-40 days' +%F)"
  src="${PGB_T}/tmp/oldnight"
  for h in 01 02 03; do
    rm -rf "${src}" && mkdir -p "${src}"
    head -c $((3 * 1024 * 1024)) /dev/urandom >"${src}/data"
    tborg create --timestamp "${day}T${h}:00:00" "${PGB_PRIMARY_REPO}::${PGB_ARCHIVE_PREFIX}${day}T${h}:00:00Z" "${src}"
  done
  local before_list before_bytes ext_before
  before_list="$(pgb_borg_archives "${PGB_PRIMARY_REPO}")"
  before_bytes="$(pgb_repo_bytes "${PGB_PRIMARY_REPO}")"
  ext_before="$(pgb_borg_archives "${PGB_EXT_REPO}")"

  pgb_run_script retention.borg borg_pg_artifacts.sh primary
  assert_success
  local after_list after_bytes newest today
  after_list="$(pgb_borg_archives "${PGB_PRIMARY_REPO}")"
  after_bytes="$(pgb_repo_bytes "${PGB_PRIMARY_REPO}")"
  newest="$(tail -n 1 <<<"${after_list}")"
  fails grep -qxF "${newest}" <<<"${before_list}"
  # Tonight's archive is the only one left of its day (keep-daily keeps one a day) ...
  today="${newest#"${PGB_ARCHIVE_PREFIX}"}"
  today="${today%%T*}"
  (( $(grep -c "^${PGB_ARCHIVE_PREFIX}${today}T" <<<"${before_list}") >= 1 ))
  assert_equal "$(grep -c "^${PGB_ARCHIVE_PREFIX}${today}T" <<<"${after_list}")" 1
  # ... the old day keeps its last archive (keep-daily), the one before it is pruned ...
  grep -qxF "${PGB_ARCHIVE_PREFIX}${day}T03:00:00Z" <<<"${after_list}"
  fails grep -qxF "${PGB_ARCHIVE_PREFIX}${day}T02:00:00Z" <<<"${after_list}"
  assert_output --regexp "Pruning archive.*${PGB_ARCHIVE_PREFIX}${day}T02:00:00Z"
  # ... and compact gave the space back: the repo is smaller although tonight's archive was added.
  (( after_bytes < before_bytes ))
  assert_equal "$(count_lines "\[ OK \] compacted ${PGB_PRIMARY_REPO}$" "${PGB_LAST_LOG}")" 1
  # The primary target left the external repository alone.
  assert_equal "$(pgb_borg_archives "${PGB_EXT_REPO}")" "${ext_before}"
}

# A night, two days after the last, with fresh incompressible data in service_a (last night's is
# gone): base backups, then Borg (TARGET, default all), at that night's date.
night_date() { date -u -d "+$((2 * $1)) days" +%F; }
night() {
  local n="$1" mib="$2" target="${3:-all}"
  docker_psql service_a_pg -c 'TRUNCATE probe' >/dev/null
  pg_fill_random service_a_pg probe "${mib}"
  pgb_nightly "night${n}" "$(night_date "${n}") 02:00:00" "${target}"
}

# old_night_archive DAYS_AGO MIB: an archive of an older night on the external drive, with MIB of
# data of its own.
old_night_archive() {
  local day src="${PGB_T}/tmp/oldnight"
  day="$(date -u -d "-$1 days" +%F)"
  rm -rf "${src}" && mkdir -p "${src}"
  head -c $(($2 * 1024 * 1024)) /dev/urandom >"${src}/data"
  tborg create --timestamp "${day}T02:00:00" "${PGB_EXT_REPO}::${PGB_ARCHIVE_PREFIX}${day}T02:00:00Z" "${src}"
  printf '%s' "${PGB_ARCHIVE_PREFIX}${day}T02:00:00Z"
}

# compact_external: Borg 1.2 asks every commit for one whole free segment (~546 MB, on top of
# the reserve) as soon as 10 segments hold freeable space; from a fully compacted repository it
# asks only for what compacting the segments it touches needs, so the sizes the tests pick hold.
compact_external() {
  tborg compact --threshold 0 "${PGB_EXT_REPO}"
}

# squeeze_external MIB: the drive shrunk to what it holds, the repo's reserve, and MIB more.
squeeze_external() {
  local used
  used="$(pgb_fs_used "${PGB_EXT_MOUNT}")"
  pgb_resize_tmpfs "${PGB_EXT_MOUNT}" $((used + $(pgb_repo_reserve "${PGB_EXT_REPO}") + $1 * 1024 * 1024))
}

@test "[2] external drive fills on a later night: oldest external archives deleted and compacted until it fits, never the last; primary untouched" {
  # The drive keeps the config's default reserve (600 MiB: what Borg needs to prune and compact a
  # full drive, FIELD-NOTES); beyond it, an older night's 8 MiB and 1 MiB free. Tonight brings
  # 4 MiB of fresh, incompressible data: it cannot fit without deleting the oldest archive.
  local seed
  seed="$(old_night_archive 3 8)"
  compact_external
  squeeze_external 1

  local ext_before ext_after primary_before primary_after archive deleted kept gone
  ext_before="$(pgb_borg_archives "${PGB_EXT_REPO}")"
  primary_before="$(pgb_borg_archives "${PGB_PRIMARY_REPO}")"
  night 1 4
  expect_rc 0 "${PGB_BACKUP_RC}" "${PGB_T}/logs/night1.backup.log"
  expect_rc 0 "${PGB_BORG_RC}" "${PGB_T}/logs/night1.borg.log"
  assert_log_lines_stamped "${PGB_LAST_LOG}"
  ext_after="$(pgb_borg_archives "${PGB_EXT_REPO}")"
  primary_after="$(pgb_borg_archives "${PGB_PRIMARY_REPO}")"
  archive="$(tail -n 1 <<<"${primary_after}")"
  [[ "${archive}" == "${PGB_ARCHIVE_PREFIX}$(night_date 1)T02:"* ]]
  # The night is on the external drive, as its newest archive.
  assert_equal "$(tail -n 1 <<<"${ext_after}")" "${archive}"
  # Room was made by deleting the OLDEST archive(s), the rest kept in order.
  deleted="$(comm -23 <(sort <<<"${ext_before}") <(sort <<<"${ext_after}"))"
  [[ -n "${deleted}" ]]
  assert_equal "$(head -n 1 <<<"${deleted}")" "${seed}"
  kept="$(grep -vxF -e "${archive}" <<<"${ext_after}" || true)"
  assert_equal "$(printf '%s\n%s\n' "$(grep -xF -f <(printf '%s\n' "${deleted}") <<<"${ext_before}")" "${kept}" | sed '/^$/d')" "${ext_before}"
  grep -qE '\[WARN\] external drive full; making room \(1/25\)' "${PGB_LAST_LOG}"
  grep -qF 'Insufficient free space' "${PGB_LAST_LOG}"
  while read -r gone; do
    grep -qF "[WARN] deleting the oldest external archive to make room: ${gone}" "${PGB_LAST_LOG}"
  done <<<"${deleted}"
  grep -qE "\[ OK \] compacted ${PGB_EXT_REPO}$" "${PGB_LAST_LOG}"
  grep -qE '\[WARN\] external drive low on space: [0-9]+ bytes free' "${PGB_LAST_LOG}"
  # The reserve is back, the repository is sound; the primary lost nothing and has the night.
  assert_equal "$(pgb_repo_reserve "${PGB_EXT_REPO}")" "${PGB_EXT_RESERVE}"
  assert_equal "$(comm -23 <(sort <<<"${primary_before}") <(sort <<<"${primary_after}"))" ""
  assert_equal "$(grep -cxF "${archive}" <<<"${primary_after}")" 1

  # A night bigger than everything the drive can give: the drive is emptied down to its newest
  # archive (more than one round of making room), the last archive is never deleted.
  ext_before="${ext_after}"
  (( $(grep -c . <<<"${ext_before}") >= 2 ))
  night 2 24 external
  expect_rc 0 "${PGB_BACKUP_RC}" "${PGB_T}/logs/night2.backup.log"
  expect_rc 1 "${PGB_BORG_RC}" "${PGB_T}/logs/night2.borg.log"
  ext_after="$(pgb_borg_archives "${PGB_EXT_REPO}")"
  assert_equal "${ext_after}" "$(tail -n 1 <<<"${ext_before}")"
  grep -qF '[WARN] external drive full; making room (2/25)' "${PGB_LAST_LOG}"
  grep -qF 'never deleting the last one' "${PGB_LAST_LOG}"
  grep -qF '[ERR ] external repository FAILED' "${PGB_LAST_LOG}"
  assert_equal "$(pgb_repo_reserve "${PGB_EXT_REPO}")" "${PGB_EXT_RESERVE}"
  tborg check "${PGB_EXT_REPO}"
}

@test "[2] a drive configured with a small reserve runs out of space mid-write: the failed transaction is cleared, the oldest archive deleted, the night fits" {
  # The same server built with reserveBytes 1 MiB (what pgb_repo_init.sh then sets on the repo).
  local small="${PGB_T}/small-reserve" seed
  PGB_EXT_RESERVE=$((1024 * 1024)) pgb_write_config "${small}.yaml"
  pgb_generate "${small}.yaml" "${small}" >/dev/null
  tborg config "${PGB_EXT_REPO}" additional_free_space $((1024 * 1024))
  seed="$(old_night_archive 5 8)"
  compact_external
  # 1 MiB free beyond the reserve: tonight's 4 MiB cannot even be written.
  squeeze_external 1

  local ext_before ext_after archive
  ext_before="$(pgb_borg_archives "${PGB_EXT_REPO}")"
  night 3 4 none
  expect_rc 0 "${PGB_BACKUP_RC}" "${PGB_T}/logs/night3.backup.log"
  pgb_run_logged night3.small env -u BORG_PASSPHRASE "TMPDIR=${PGB_T}/tmp" "BORG_BASE_DIR=${BORG_BASE_DIR}" TZ=UTC \
    faketime "$(night_date 3) 02:30:00" bash "${small}/${PGB_SERVER_NAME}/root/usr/local/sbin/borg_pg_artifacts.sh" external
  expect_rc 0 "${status}" "${PGB_LAST_LOG}"
  assert_log_lines_stamped "${PGB_LAST_LOG}"
  # Borg ran out of space writing (not at its commit check), and the run recovered from it.
  grep -qF 'No space left on device' "${PGB_LAST_LOG}"
  grep -qF "[WARN] deleting the oldest external archive to make room: ${seed}" "${PGB_LAST_LOG}"
  ext_after="$(pgb_borg_archives "${PGB_EXT_REPO}")"
  archive="$(tail -n 1 <<<"${ext_after}")"
  [[ "${archive}" == "${PGB_ARCHIVE_PREFIX}$(night_date 3)T02:"* ]]
  fails grep -qxF "${seed}" <<<"${ext_after}"
  assert_equal "$(grep -vxF "${archive}" <<<"${ext_after}")" "$(grep -vxF "${seed}" <<<"${ext_before}")"
  # No uncommitted segments or stale lock left behind, reserve back.
  assert_equal "$(pgb_repo_reserve "${PGB_EXT_REPO}")" $((1024 * 1024))
  fails compgen -G "${PGB_EXT_REPO}/lock.*"
  tborg check "${PGB_EXT_REPO}"
}
