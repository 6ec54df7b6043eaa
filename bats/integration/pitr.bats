#!/usr/bin/env bats
# Point-in-time recovery, end to end, with real parts: two PostgreSQL 15 clusters on loopback
# ports stand in for the docker services, a tmpfs is the backup disk, pgb_receivewal.sh streams
# their WAL, pg_backup_all.sh takes the base backups, borg_pg_artifacts.sh archives them, rsync
# plays the dev machine's pull; pgb-restore.sh (server and dev builds) restores them.
#
# Story (setup_file): batch 1, nightly base backup, batch 2, time T, batch 3, WAL streamed.
# Then: restore to T has exactly batches 1 and 2; restore to the end has all three; the same from
# a Borg archive and from the pulled copy once the source clusters are stopped.

bats_require_minimum_version 1.5.0

load 'helpers/load'

# Ports reserved for this suite: 55420-55439.
readonly PITR_PORT_A=55420
readonly PITR_PORT_B=55421
readonly PITR_PORT_VERIFY=55430
readonly PITR_PORT_QUERY=55431
readonly PITR_REPL_PASSWORD='s3cret:with\back$lash'"'"'q'

# One batch: 500 rows tagged with the batch number.
write_batch() {
  local port="$1" batch="$2"
  pg_psql "${port}" -c "INSERT INTO pitr (batch, payload) SELECT ${batch}, md5('${batch}-' || g) FROM generate_series(1, 500) g" >/dev/null
}

# A fingerprint of the table per batch: "batch|rows|md5", one line per batch present.
batches_sql="SELECT batch || '|' || count(*) || '|' || md5(string_agg(id || ',' || payload, ';' ORDER BY id)) FROM pitr GROUP BY batch ORDER BY batch"

# The first N lines of a fingerprint file (batches 1..N).
first_batches() {
  head -n "$2" "$1"
}

# How many receivers of the cluster on PORT are streaming (with AND_WHERE: and meet it).
receivers_streaming() {
  pg_psql "$1" -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal' ${2:-}"
}

# True when the receiver of the cluster on PORT has flushed everything written so far.
wal_flushed() {
  [[ "$(receivers_streaming "$1" 'AND flush_lsn >= pg_current_wal_lsn()')" == 1 ]]
}

# Waits until the receiver of the cluster on PORT has flushed everything written so far.
wait_wal_flushed() {
  WAIT_PORT="$1" pgb_wait_for "the receiver of port $1 to flush the WAL written so far" 300 replication_state \
    wal_flushed "$1"
}

# Diagnostics of a wait on a receiver: what the cluster on WAIT_PORT sees of it, and its log.
replication_state() {
  pg_psql "${WAIT_PORT}" -c 'SELECT application_name, state, flush_lsn, pg_current_wal_lsn() FROM pg_stat_replication'
  [[ -z "${WAIT_LOG:-}" ]] || pgb_tail_file "${WAIT_LOG}"
}

receiver_streams() {
  [[ "$(receivers_streaming "$1")" == 1 ]]
}

# Starts the receiver of a service in the background, as its unit would, and waits until it
# streams; its pid goes to PITR_TMP/recv_NAME.pid (stop_receiver stops it with TERM).
start_receiver() {
  local service="$1" port="$2" log="${PITR_TMP}/recv_$1.log"
  "${SERVER_SBIN}/pgb_receivewal.sh" "${service}" >"${log}" 2>&1 </dev/null 3>&- &
  echo $! >"${PITR_TMP}/recv_${service}.pid"
  WAIT_PORT="${port}" WAIT_LOG="${log}" pgb_wait_for "the receiver of ${service} to stream" 300 replication_state \
    receiver_streams "${port}"
}

stop_receiver() {
  local pid_file="${PITR_TMP}/recv_$1.pid" pid
  [[ -f "${pid_file}" ]] || return 0
  pid="$(cat "${pid_file}")"
  rm -f "${pid_file}"
  kill -TERM "${pid}" 2>/dev/null || return 0
  pgb_wait_for "the receiver $1 (pid ${pid}) to stop after TERM" 300 - pgb_pid_gone "${pid}"
}

# True when MARKER is in the 8 KiB of DIR/FILE (or FILE.partial) that end at OFFSET: where the
# record of a row committed just before OFFSET lies. Reads 8 KiB, not the 16 MiB segment.
wal_record_landed() {
  local dir="$1" file="$2" offset="$3" marker="$4" path
  path="${dir}/${file}.partial"
  [[ -f "${path}" ]] || path="${dir}/${file}"
  [[ -f "${path}" ]] || return 1
  dd if="${path}" bs=8192 count=1 skip="$(( offset > 8192 ? offset - 8192 : 0 ))" iflag=skip_bytes status=none \
    | grep -q -a -F "${marker}"
}

setup_file() {
  pgb_require_root
  pgb_ensure_pkg borg borgbackup
  pgb_scratch_init
  # Everything of the suite on its own tmpfs: fsync and syncfs cost nothing and no other load on
  # the machine's disk slows the clusters down. postgres must reach what lies below it.
  export PITR_TMP="${PGB_T}/work"
  pgb_mount_tmpfs "${PITR_TMP}" 2g
  chmod 0711 "${PITR_TMP}"
  mkdir -p "${PITR_TMP}"/{pg,etc,run,tmp,borgbase,restore,dev/upload}
  chmod 711 "${PITR_TMP}/tmp" "${PITR_TMP}/restore"
  pgb_mount_tmpfs "${PITR_TMP}/backup" 768m

  printf '%s\n' "${PITR_REPL_PASSWORD}" >"${PITR_TMP}/etc/repl_password"
  printf 'BORG_PASSPHRASE=pitr-test-passphrase\n' >"${PITR_TMP}/etc/borg.env"
  chmod 600 "${PITR_TMP}/etc/repl_password" "${PITR_TMP}/etc/borg.env"

  cat >"${PITR_TMP}/pgb.config.yaml" <<EOF
version: 1
servers:
  - name: pitr-server
    paths:
      backupMount: ${PITR_TMP}/backup
      artifacts: ${PITR_TMP}/backup/postgres
      configArtifacts: ${PITR_TMP}/backup/config
      lockFile: ${PITR_TMP}/run/pgb.lock
      pgBinRoot: /usr/lib/postgresql
    repos:
      primary: ${PITR_TMP}/backup/borg
      external: null
    borg: { passphraseFile: ${PITR_TMP}/etc/borg.env }
    replication: { user: repl_backup, passwordFile: ${PITR_TMP}/etc/repl_password, allowedSubnet: 127.0.0.1/32 }
    services:
      - { name: svc_a, port: ${PITR_PORT_A}, pgVersion: 15 }
      - { name: svc_b, port: ${PITR_PORT_B}, pgVersion: 15 }
devs:
  - name: pitr-dev
    pullFrom: [pitr-server]
    localBase: ${PITR_TMP}/dev/upload
    pgBinRoot: /usr/lib/postgresql
EOF
  pgb_generate "${PITR_TMP}/pgb.config.yaml" "${PITR_TMP}/gen" >/dev/null
  export SERVER_SBIN="${PITR_TMP}/gen/pitr-server/root/usr/local/sbin"
  export DEV_SBIN="${PITR_TMP}/gen/pitr-dev/root/usr/local/sbin"
  export WAL_A="${PITR_TMP}/backup/postgres/wal/svc_a"
  export PULLED="${PITR_TMP}/dev/upload/pitr-server/postgres"
  # Borg's cache and security dirs inside the test dir, not in /var/lib.
  export BORG_BASE_DIR="${PITR_TMP}/borgbase"
  # Scratch dirs of the restore drill and the scripts' temp dirs inside the test dir too.
  export TMPDIR="${PITR_TMP}/tmp"

  # Durable clusters (fsync, synchronous_commit, 16 MiB segments): the RPO test measures when a
  # commit reaches the backup disk. Replication as the generated role and pg_hba rules allow it.
  local name port snippets="${PITR_TMP}/gen/pitr-server/snippets"
  for name in svc_a:"${PITR_PORT_A}" svc_b:"${PITR_PORT_B}"; do
    port="${name#*:}"
    name="${name%%:*}"
    pg_cluster_create "${PITR_TMP}/pg/${name}" "${port}" durable
    pg_cluster_start "${PITR_TMP}/pg/${name}"
    pg_apply_hba "${PITR_TMP}/pg/${name}" "${snippets}/pg_hba.conf"
    pg_apply_role "${port}" "${snippets}/replication-role.sql" repl_backup "${PITR_TMP}/etc/repl_password"
  done
  pg_psql "${PITR_PORT_A}" -c 'CREATE TABLE pitr (id bigserial PRIMARY KEY, batch int NOT NULL, payload text NOT NULL)' >/dev/null
  pg_psql "${PITR_PORT_B}" -c 'CREATE TABLE pitr (id bigserial PRIMARY KEY, batch int NOT NULL, payload text NOT NULL)' >/dev/null

  # The WAL receivers run all along, as their systemd units would.
  start_receiver svc_a "${PITR_PORT_A}"
  start_receiver svc_b "${PITR_PORT_B}"

  write_batch "${PITR_PORT_A}" 1
  write_batch "${PITR_PORT_B}" 1
  "${SERVER_SBIN}/pg_backup_all.sh" >"${PITR_TMP}/backup_all.log" 2>&1 || { cat "${PITR_TMP}/backup_all.log" >&2; return 1; }
  write_batch "${PITR_PORT_A}" 2
  # T lies strictly between the commits of batch 2 and batch 3 (second precision, as users type it).
  sleep 1.1
  export TARGET_T
  TARGET_T="$(date -u +'%Y-%m-%d %H:%M:%S+00')"
  sleep 1.1
  write_batch "${PITR_PORT_A}" 3
  write_batch "${PITR_PORT_B}" 2
  wait_wal_flushed "${PITR_PORT_A}"
  wait_wal_flushed "${PITR_PORT_B}"
  pg_psql "${PITR_PORT_A}" -c "${batches_sql}" >"${PITR_TMP}/source_a.batches"
  pg_psql "${PITR_PORT_B}" -c "${batches_sql}" >"${PITR_TMP}/source_b.batches"

  # The nightly Borg archive (the receivers keep writing meanwhile, as in production).
  BORG_PASSPHRASE=pitr-test-passphrase borg init --encryption=repokey-blake2 "${PITR_TMP}/backup/borg" >/dev/null 2>&1
  "${SERVER_SBIN}/borg_pg_artifacts.sh" primary >"${PITR_TMP}/borg.log" 2>&1 || { cat "${PITR_TMP}/borg.log" >&2; return 1; }
  # The dev machine's pull (rsync -a, as pull-server-backups.sh does over SSH).
  mkdir -p "${PULLED}"
  rsync -a --delete "${PITR_TMP}/backup/postgres/" "${PULLED}/"
}

teardown_file() {
  if [[ -n "${PITR_TMP:-}" ]]; then
    stop_receiver svc_a || true
    stop_receiver svc_b || true
  fi
  pgb_teardown_all
}

restore_a() {
  run "${SERVER_SBIN}/pgb-restore.sh" restore --service svc_a "$@"
}

@test "the receiver streams each service's WAL onto the mounted backup disk through its slot" {
  run pg_psql "${PITR_PORT_A}" -c "SELECT slot_name || ' ' || active FROM pg_replication_slots"
  assert_output 'pgb_svc_a true'
  run pg_psql "${PITR_PORT_B}" -c "SELECT slot_name || ' ' || active FROM pg_replication_slots"
  assert_output 'pgb_svc_b true'
  # The live segment is a .partial on the tmpfs; batch 3 is in it already.
  run find "${WAL_A}" -name '*.partial'
  assert [ "${#lines[@]}" -eq 1 ]
  assert_equal "$(findmnt -n -o FSTYPE --target "${WAL_A}")" tmpfs
  grep -q -a -F "$(pg_psql "${PITR_PORT_A}" -c "SELECT payload FROM pitr WHERE batch = 3 ORDER BY id DESC LIMIT 1")" "${lines[0]}"
  # Neither the password nor its file name is on any command line.
  local pid
  for pid in $(pgrep -f pg_receivewal); do
    run ! grep -a -F 's3cret' "/proc/${pid}/cmdline"
    run ! grep -a -F 'repl_password' "/proc/${pid}/cmdline"
  done
  [[ -n "$(pgrep -f 'pg_receivewal.*pgb_svc_a')" ]]
}

@test "list: base backups, the WAL range and the point-in-time window of each service" {
  local backup
  backup="$(basename "$(find "${PITR_TMP}/backup/postgres/basebackups" -mindepth 1 -maxdepth 1 -name 'svc_a_basebackup_*')")"
  run "${SERVER_SBIN}/pgb-restore.sh" list --service svc_a
  assert_success
  assert_output --partial "[svc_a] PostgreSQL 15"
  assert_output --partial "${backup}  consistent at "
  assert_output --regexp "WAL in ${WAL_A}: [0-9A-F]{24} \.\. [0-9A-F]{24}\.partial \([0-9]+ files\)"
  assert_output --partial "point in time: from "
  assert_output --regexp "Borg archives \(primary, ${PITR_TMP}/backup/borg\):"$'\n'"  pitr-server-pg-artifacts-"
  refute_output --partial "[svc_b]"
}

@test "restore to T from the raw artifacts: exactly batches 1 and 2, verified on a scratch port" {
  local dest="${PITR_TMP}/restore/raw_t"
  restore_a --dest "${dest}" --target-time "${TARGET_T}" --verify --port "${PITR_PORT_VERIFY}"
  assert_success
  assert_output --partial "recovery finished"
  assert_output --partial "database postgres: "
  # recovery.signal is gone (recovery finished, promoted); the settings it ran with are kept as
  # comments only, and the staging dir they named is gone: the copy starts anywhere as it is.
  assert [ ! -e "${dest}/recovery.signal" ]
  assert [ ! -e "${dest}-wal" ]
  grep -q "^# recovery finished, disabled by pgb-restore.sh: recovery_target_time = '" "${dest}/postgresql.auto.conf"
  grep -q "^# recovery finished, disabled by pgb-restore.sh: restore_command = 'cp ${dest}-wal/%f %p'" "${dest}/postgresql.auto.conf"
  run grep -Eq '^[[:space:]]*(restore_command|recovery_target)' "${dest}/postgresql.auto.conf"
  assert_failure
  run pg_query_datadir "${dest}" "${PITR_PORT_QUERY}" "${batches_sql}"
  assert_success
  assert_output "$(first_batches "${PITR_TMP}/source_a.batches" 2)"
  assert_equal "$(wc -l <<<"${output}")" 2
}

@test "restore to the end of the WAL from the raw artifacts: all three batches" {
  local dest="${PITR_TMP}/restore/raw_end"
  restore_a --dest "${dest}"
  assert_success
  # Without --verify the copy is left ready to start: settings, signal, WAL staged with the
  # .partial segment renamed.
  assert [ -f "${dest}/recovery.signal" ]
  run ! grep -q '^recovery_target_time =' "${dest}/postgresql.auto.conf"
  run find "${dest}-wal" -name '*.partial'
  assert_output ''
  assert [ -f "${dest}-wal/$(basename "$(find "${WAL_A}" -name '*.partial')" .partial)" ]
  run pg_query_datadir "${dest}" "${PITR_PORT_QUERY}" "${batches_sql}"
  assert_success
  assert_output "$(cat "${PITR_TMP}/source_a.batches")"
  assert_equal "$(wc -l <<<"${output}")" 3
}

@test "restore refuses a non-empty destination, an unknown service and targets out of range" {
  local dest="${PITR_TMP}/restore/busy"
  mkdir -p "${dest}"
  echo keep >"${dest}/precious"
  restore_a --dest "${dest}"
  assert_failure 2
  assert_output --partial "is not empty; refusing to overwrite it"
  assert_equal "$(cat "${dest}/precious")" keep

  run "${SERVER_SBIN}/pgb-restore.sh" restore --service nope --dest "${PITR_TMP}/restore/nope"
  assert_failure 2
  assert_output --partial "unknown service: nope"
  assert [ ! -e "${PITR_TMP}/restore/nope" ]

  restore_a --dest "${PITR_TMP}/restore/early" --target-time '2001-02-03 04:05:06+00'
  assert_failure 1
  assert_output --partial "is before the oldest base backup"
  assert [ ! -e "${PITR_TMP}/restore/early" ]
  assert [ ! -e "${PITR_TMP}/restore/early-wal" ]

  restore_a --dest "${PITR_TMP}/restore/late" --target-time "$(date -u -d '+1 hour' +'%Y-%m-%d %H:%M:%S+00')"
  assert_failure 1
  assert_output --partial "is after the newest WAL"
  assert [ ! -e "${PITR_TMP}/restore/late" ]

  restore_a --dest "${PITR_TMP}/restore/nozone" --target-time '2030-01-01 00:00:00'
  assert_failure 2
  assert_output --partial "with its zone"
}

@test "RPO: every commit is in the WAL file on the backup disk when it returns; flush lag in ms" {
  local i marker wal_file offset commit_ns found_ns immediate=0 lag lags=() waits=() sorted_lag sorted_wait
  for i in $(seq 1 10); do
    marker="rpo-probe-${i}-${RANDOM}${RANDOM}"
    # Commit one row, then ask where the WAL ends now: the row's record lies just before.
    read -r wal_file offset < <(pg_psql "${PITR_PORT_A}" \
      -c "INSERT INTO pitr (batch, payload) VALUES (99, '${marker}')" \
      -c "SELECT file_name || ' ' || file_offset FROM pg_walfile_name_offset(pg_current_wal_lsn())")
    commit_ns="$(date +%s%N)"
    if wal_record_landed "${WAL_A}" "${wal_file}" "${offset}" "${marker}"; then
      immediate=$((immediate + 1))
    fi
    until wal_record_landed "${WAL_A}" "${wal_file}" "${offset}" "${marker}"; do
      (( $(date +%s%N) - commit_ns < 5000000000 )) || fail "commit ${i} not in ${WAL_A}/${wal_file} after 5 s"
      sleep 0.001
    done
    found_ns="$(date +%s%N)"
    waits+=("$(( (found_ns - commit_ns) / 1000000 ))")
    # The server's own measure: its local flush of the commit -> the receiver's fsync confirmed.
    lag="$(pg_psql "${PITR_PORT_A}" -c "SELECT coalesce(round(extract(epoch FROM flush_lag) * 1000, 1)::text, '') FROM pg_stat_replication WHERE application_name = 'pg_receivewal'" | head -n 1)"
    [[ -z "${lag}" ]] || lags+=("${lag}")
  done
  sorted_lag="$(printf '%s\n' "${lags[@]}" | sort -g)"
  sorted_wait="$(printf '%s\n' "${waits[@]}" | sort -n)"
  printf '# RPO: %d of 10 commits were already in the WAL file on the backup disk when the commit returned (max wait %s ms incl. the check);\n# pg_stat_replication.flush_lag (primary flush -> fsynced by pg_receivewal): median %s ms, max %s ms over %d samples\n' \
    "${immediate}" "$(tail -n 1 <<<"${sorted_wait}")" "$(sed -n "$(( (${#lags[@]} + 1) / 2 ))p" <<<"${sorted_lag}")" "$(tail -n 1 <<<"${sorted_lag}")" "${#lags[@]}" >&3
  (( ${#lags[@]} > 0 ))
  # Sub-second RPO: every commit reached the backup disk within a second.
  (( $(tail -n 1 <<<"${sorted_wait}") < 1000 ))
  pg_psql "${PITR_PORT_A}" -c "DELETE FROM pitr WHERE batch = 99" >/dev/null
}

@test "the receiver stops cleanly on SIGTERM and removes its password file" {
  local pid
  pid="$(cat "${PITR_TMP}/recv_svc_b.pid")"
  # One private password file per running receiver (svc_a, svc_b), root-only.
  run find "${TMPDIR}" -name pgpass -perm 0600 -user root
  assert_equal "${#lines[@]}" 2
  stop_receiver svc_b
  run ! kill -0 "${pid}"
  run cat "${PITR_TMP}/recv_svc_b.log"
  assert_output --partial "stopped on request"
  run find "${TMPDIR}" -name pgpass
  assert_equal "${#lines[@]}" 1
  # The slot stays: a restarted receiver resumes where it stopped.
  run pg_psql "${PITR_PORT_B}" -c "SELECT slot_name || ' ' || active FROM pg_replication_slots"
  assert_output 'pgb_svc_b false'
}

@test "with the source clusters stopped: restore to T and to the end from the Borg archive" {
  stop_receiver svc_a
  pg_cluster_stop "${PITR_TMP}/pg/svc_a"
  pg_cluster_stop "${PITR_TMP}/pg/svc_b"
  local dest="${PITR_TMP}/restore/borg_t"
  restore_a --from primary --archive latest --dest "${dest}" --target-time "${TARGET_T}" --verify --port "${PITR_PORT_VERIFY}"
  assert_success
  assert_output --partial "from ${PITR_TMP}/backup/borg::pitr-server-pg-artifacts-"
  assert [ -z "$(find "${PITR_TMP}/restore" -maxdepth 1 -name 'borg_t-extract.*')" ]
  run pg_query_datadir "${dest}" "${PITR_PORT_QUERY}" "${batches_sql}"
  assert_output "$(first_batches "${PITR_TMP}/source_a.batches" 2)"

  dest="${PITR_TMP}/restore/borg_end"
  restore_a --from primary --dest "${dest}" --verify --port "${PITR_PORT_VERIFY}"
  assert_success
  run pg_query_datadir "${dest}" "${PITR_PORT_QUERY}" "${batches_sql}"
  assert_output "$(cat "${PITR_TMP}/source_a.batches")"
}

@test "with the source clusters stopped: the dev machine restores from its pulled copy" {
  [[ ! -f "${PITR_TMP}/pg/svc_a/postmaster.pid" ]]
  run "${DEV_SBIN}/pgb-restore.sh" list
  assert_success
  assert_output --partial "== pitr-server =="
  assert_output --partial "base backups in ${PULLED}/basebackups:"

  local dest="${PITR_TMP}/restore/dev_t"
  run "${DEV_SBIN}/pgb-restore.sh" restore --service svc_a --dest "${dest}" --target-time "${TARGET_T}" --verify --port "${PITR_PORT_VERIFY}"
  assert_success
  run pg_query_datadir "${dest}" "${PITR_PORT_QUERY}" "${batches_sql}"
  assert_output "$(first_batches "${PITR_TMP}/source_a.batches" 2)"

  dest="${PITR_TMP}/restore/dev_end"
  run "${DEV_SBIN}/pgb-restore.sh" restore --server pitr-server --service svc_b --dest "${dest}" --verify
  assert_success
  run pg_query_datadir "${dest}" "${PITR_PORT_QUERY}" "${batches_sql}"
  assert_output "$(cat "${PITR_TMP}/source_b.batches")"

  # The dev machine has no Borg repository of the server configured.
  run "${DEV_SBIN}/pgb-restore.sh" restore --service svc_a --from primary --dest "${PITR_TMP}/restore/dev_borg"
  assert_failure 2
  assert_output --partial "no primary Borg repository of pitr-server is configured on pitr-dev"
}

@test "restore drill: every service restored, recovered, checked and removed" {
  run "${SERVER_SBIN}/pgb-restore.sh" drill --from raw
  assert_success
  assert_output --partial "[svc_a] drill passed"
  assert_output --partial "[svc_b] drill passed"
  assert_output --partial "database postgres: "
  assert [ -z "$(find "${TMPDIR}" -mindepth 1 -maxdepth 1 -name 'pgb-drill.*')" ]
}
