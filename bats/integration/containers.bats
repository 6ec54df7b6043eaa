#!/usr/bin/env bats
# The services as real containers (issue 13): two PostgreSQL 17 containers of the trixie test
# image on this PostgreSQL-15-only host, prepared with the server README's steps, and the
# generated scripts with tools: image: base backups, verification and WAL streaming run from the
# service's own image. Also what happens when a container is missing, stopped or of another major.
# Runs as root, in the suite's network namespace (docker's --network host is that namespace).
#
#   bats bats/integration/containers.bats

load 'helpers/load'

# The jobs' textfiles in the scratch root (config.bash prints this as the server's monitoring: block).
pgb_config_monitoring() {
  printf '    monitoring:\n      textfileDir: %s\n' "${PGB_T}/textfile"
}

setup_file() {
  pgb_ensure_pkg promtool prometheus
  docker_suite_setup "svc_a:55711 svc_b:55712" 500
  mkdir -p "${PGB_T}/textfile"
}

teardown_file() {
  [[ -z "${PGB_T:-}" ]] || pgb_mark teardown
  docker_stop
  pgb_teardown_all
}

setup() {
  pgb_mark "test: ${BATS_TEST_DESCRIPTION}"
}

# Puts back what a failed test may have left: both containers as set up, helpers gone.
teardown() {
  [[ -n "${PGB_T:-}" ]] || return 0
  local name kind arg
  while read -r kind arg; do
    case "${kind}" in
      pgid)
        if pgb_started_kill pgid "${arg}" TERM; then
          pgb_wait_for "process group ${arg} to end" 60 - pgb_pid_gone "${arg}" || pgb_started_kill pgid "${arg}" KILL || true
        fi
        ;;
    esac
    pgb_started_remove "${kind}" "${arg}"
  done < <(grep -E '^pgid ' "${PGB_T}/.started" || true)
  tdocker rm -f svc_b_pg_v15 >/dev/null 2>&1 || true
  if tdocker inspect svc_b_pg_away >/dev/null 2>&1; then
    tdocker rm -f svc_b_pg >/dev/null 2>&1 || true
    tdocker rename svc_b_pg_away svc_b_pg
  fi
  while read -r name; do
    [[ "$(tdocker inspect -f '{{.State.Running}}' "${name}_pg")" == true ]] || pgb_service_start "${name}"
  done < <(pgb_service_names)
}

newest_backup() {
  pgb_promoted "$1" | tail -n 1
}

# The WAL receiver of SERVICE in the background, as its unit runs it, in its own process group.
start_receiver() {
  pgb_script_cmd pgb_receivewal.sh
  setsid "${PGB_CMD[@]}" "$1" >"${PGB_T}/logs/receivewal-$1.log" 2>&1 3>&- &
  RECEIVER_PID=$!
  pgb_started_add pgid "${RECEIVER_PID}"
}

receiver_diagnose() {
  pgb_tail_file "${PGB_T}/logs/receivewal-svc_a.log"
  ls -la "${PGB_ARTIFACTS}/wal/svc_a" || true
  docker_psql svc_a_pg -c 'SELECT * FROM pg_stat_replication' -c 'SELECT pg_current_wal_lsn(), pg_walfile_name(pg_current_wal_lsn())' || true
}

# no_container NAME: no container (running or not) has a name containing NAME.
no_container() {
  [[ -z "$(tdocker ps -aq --filter "name=$1")" ]]
}

# timeline_segment SERVICE TLI: a complete segment of that timeline was received.
timeline_segment() {
  [[ -n "$(find "${PGB_ARTIFACTS}/wal/$1" -maxdepth 1 -type f -name "$2????????????????" -print -quit)" ]]
}

# Stops the receiver started last (SIGTERM, as systemd stops it) and waits for it; one that ended
# on its own fails the test with its log.
stop_receiver() {
  kill -TERM "${RECEIVER_PID}" || { receiver_diagnose >&2; return 1; }
  wait "${RECEIVER_PID}" || true
  pgb_started_remove pgid "${RECEIVER_PID}"
}

# ---- the tests --------------------------------------------------------------------------------

@test "the host has no PostgreSQL 17 at all: every 17 tool comes from the image" {
  [[ ! -e /usr/lib/postgresql/17 ]]
  run grep -c 'tools: image' "${PGB_T}/pgb.config.yaml"
  assert_output 2
}

@test "the README's steps made the containers ready: role applied through docker exec, rules at the top of pg_hba.conf, reloaded" {
  assert_file_contains "${PGB_T}/logs/readme-prepare-1.log" 'replication role repl_backup applied to 2 service(s)'
  local name first
  first="$(grep -v '^#' "${PGB_SNIPPETS}/pg_hba.conf" | grep -m 1 .)"
  for name in $(pgb_service_names); do
    run docker_psql "${name}_pg" -c "SELECT rolreplication FROM pg_roles WHERE rolname = 'repl_backup'"
    assert_output t
    run docker_psql "${name}_pg" -c "SELECT count(*) FROM pg_hba_file_rules WHERE 'repl_backup' = ANY(user_name) AND 'replication' = ANY(database)"
    assert_output 1
    # The generated rule comes first (first match wins), the image's own rules after it.
    run grep -v -e '^#' -e '^$' "$(docker_volume_dir "${name}_pgdata")/pg_hba.conf"
    assert_line --index 0 "${first}"
    assert_output --partial 'host all all all scram-sha-256'
  done
}

@test "nightly with tools: image: base backups of PostgreSQL 17 taken, verified and promoted from the image" {
  pgb_nightly night1 "" primary
  expect_rc 0 "${PGB_BACKUP_RC}" "${PGB_T}/logs/night1.backup.log"
  expect_rc 0 "${PGB_BORG_RC}" "${PGB_T}/logs/night1.borg.log"
  assert_log_lines_stamped "${PGB_T}/logs/night1.backup.log"
  local name bb
  while read -r name; do
    bb="${PGB_BASE_DIR}/$(newest_backup "${name}")"
    [[ -d "${bb}" ]]
    assert_equal "$(cat "${bb}/PG_VERSION")" 17
    [[ -s "${bb}/backup_manifest" ]]
    # Written by root like the host tools' output: the raw retention and the dev pull can handle it.
    assert_equal "$(find "${bb}" ! -user root | wc -l)" 0
    # Verified again here with the image's own pg_verifybackup (the host has none of 17).
    tdocker run --rm --network none -v "${bb}:/bb:ro" --entrypoint pg_verifybackup "${PGB_DOCKER_IMAGE}" -q -n /bb
  done < <(pgb_service_names)
  assert_equal "$(pgb_temp_dirs)" ''
  # Every tool container was removed when its tool ended.
  assert_equal "$(tdocker ps -aq --filter name=pgb-backup-)" ''
}

@test "WAL streams from the image into the WAL dir, and SIGTERM stops the receiver cleanly" {
  start_receiver svc_a
  pgb_wait_for "svc_a's slot to be active" 120 receiver_diagnose docker_slot_active svc_a
  local before
  before="$(wal_segments svc_a)"
  docker_psql svc_a_pg -c "INSERT INTO notes (body) SELECT 'streamed ' || g FROM generate_series(1, 2000) g" -c 'SELECT pg_switch_wal()' >/dev/null
  pgb_wait_for "a new WAL segment of svc_a" 120 receiver_diagnose \
    wal_segments_above svc_a "${before}"
  # The password is nowhere: not on any argv of this namespace's processes, not in docker inspect.
  local pass
  pass="$(head -n 1 "${PGB_REPL_PASS_FILE}")"
  run tdocker inspect pgb-receivewal-svc_a-pg_receivewal
  assert_success
  refute_output --partial "${pass}"
  run bash -c 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " "'
  refute_output --partial "${pass}"
  kill -TERM "${RECEIVER_PID}"
  local rc=0
  wait "${RECEIVER_PID}" || rc=$?
  pgb_started_remove pgid "${RECEIVER_PID}"
  expect_rc 0 "${rc}" "${PGB_T}/logs/receivewal-svc_a.log"
  assert_file_contains "${PGB_T}/logs/receivewal-svc_a.log" 'stopped on request'
  pgb_wait_for "the receiver container to be gone" 60 - no_container pgb-receivewal-svc_a
  run docker_slot_active svc_a
  assert_failure
}

@test "PITR of PostgreSQL 17 from the raw artifacts, verified in a throwaway container of the image" {
  start_receiver svc_a
  pgb_wait_for "svc_a's slot to be active" 120 receiver_diagnose docker_slot_active svc_a
  docker_psql svc_a_pg -c 'CREATE TABLE pitr (id int PRIMARY KEY)' -c 'INSERT INTO pitr SELECT generate_series(1, 100)'
  local target before
  target="$(docker_psql svc_a_pg -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")"
  docker_psql svc_a_pg -c 'INSERT INTO pitr SELECT generate_series(101, 200)'
  before="$(wal_segments svc_a)"
  docker_psql svc_a_pg -c 'SELECT pg_switch_wal()' >/dev/null
  pgb_wait_for "the switched segment of svc_a" 120 receiver_diagnose \
    wal_segments_above svc_a "${before}"
  mkdir -p "${PGB_T}/restore"
  pgb_run_script pitr-verify pgb-restore.sh restore --service svc_a --dest "${PGB_T}/restore/pitr" \
    --target-time "${target}" --verify
  assert_success
  assert_output --partial "verifying in a throwaway container of ${PGB_DOCKER_IMAGE}"
  assert_output --partial 'recovery finished; the restored copy was promoted'
  assert_log_lines_stamped "${PGB_LAST_LOG}"
  # The check that a transaction follows the target ran, with the image's pg_waldump (the host
  # has none of 17): no warning, and the target is kept (the copy below stops at it).
  refute_output --partial 'pg_waldump missing'
  refute_output --partial 'no transaction in the WAL after the target time'
  assert_file_contains "${PGB_T}/restore/pitr/postgresql.auto.conf" "^# recovery finished, disabled by pgb-restore.sh: recovery_target_time = "
  assert_equal "$(tdocker ps -aq --filter name=pgb-waldump-)" ''
  # Recovering to the end of the WAL instead, the restore says where that ends (the image's pg_waldump reads it).
  pgb_run_script end-of-wal pgb-restore.sh restore --service svc_a --dest "${PGB_T}/restore/end"
  assert_success
  refute_output --partial 'pg_waldump missing'
  assert_output --regexp '\[svc_a\] the last transaction in the WAL: [0-9-]+ [0-9:]+\+00, [0-9]+ s before the newest WAL here'
  rm -rf -- "${PGB_T}/restore/end" "${PGB_T}/restore/end-wal"
  # The verify container is gone; the copy holds exactly the rows committed before the target.
  assert_equal "$(tdocker ps -aq --filter name=pgb-verify-)" ''
  run docker_query_datadir "${PGB_DOCKER_IMAGE}" "${PGB_T}/restore/pitr" 'SELECT count(*), max(id) FROM pitr'
  assert_success
  assert_output '100|100'
  stop_receiver
}

# drill_series NAME SERVICE: the value of the drill's series NAME of SERVICE in its textfile.
drill_series() {
  sed -n "s/^$1{service=\"$2\"} \([0-9][0-9]*\)$/\1/p" "${PGB_T}/textfile/pgb_restore_drill.prom"
}

# receiver_flushed SERVICE: its receiver has flushed all the WAL the container has written.
receiver_flushed() {
  [[ "$(docker_psql "$1_pg" -c 'SELECT count(*) FROM pg_stat_replication WHERE flush_lsn >= pg_current_wal_lsn()')" == 1 ]]
}

@test "the drill restores every service from raw and from the primary Borg repository, each verified in a container of its image, with duration and lag" {
  local copy t0 t1 commit lag took
  start_receiver svc_a
  pgb_wait_for "svc_a's slot to be active" 120 receiver_diagnose docker_slot_active svc_a
  for copy in raw primary; do
    # A commit just before the drill, streamed: the recovered copy has it, so the lag is measured from it.
    docker_psql svc_a_pg -c "INSERT INTO notes (body) VALUES ('before the drill from ${copy}')" >/dev/null
    commit="$(date -u +%s)"
    pgb_wait_for "the receiver of svc_a to flush" 60 receiver_diagnose receiver_flushed svc_a
    t0="$(date -u +%s)"
    if [[ "${copy}" == primary ]]; then
      # The primary copy holds what the last archive holds: archive now, with that commit.
      pgb_run_script "borg-${copy}" borg_pg_artifacts.sh primary
      assert_success
    fi
    pgb_run_script "drill-${copy}" pgb-restore.sh drill --from "${copy}"
    t1="$(date -u +%s)"
    assert_success
    assert_output --partial 'restore drill: all 2 service(s) restored, recovered and answered'
    # Where recovery would end, read from the WAL with the image's pg_waldump, then where it did.
    refute_output --partial 'pg_waldump missing'
    assert_output --regexp '\[svc_a\] the last transaction in the WAL: [0-9-]+ [0-9:]+\+00, [0-9]+ s before the newest WAL here'
    assert_output --regexp '\[svc_a\] recovery ended at the last transaction replayed, '
    run grep -c 'verifying in a throwaway container' "${PGB_LAST_LOG}"
    assert_output 2
    run grep -cE "\] drill passed: from ${copy} in [0-9]+ s; recovered to [0-9-]+ [0-9:]+\+00, [0-9]+ s before the drill began" "${PGB_LAST_LOG}"
    assert_output 2
    run grep -cE '\] (the last transaction in the WAL: |no transaction in the WAL after the backup)' "${PGB_LAST_LOG}"
    assert_output 2
    assert_equal "$(tdocker ps -aq --filter name=pgb-verify-)" ''
    assert_equal "$(tdocker ps -aq --filter name=pgb-waldump-)" ''
    # The metrics: lint-clean, the duration and the lag of each service measured.
    run promtool check metrics <"${PGB_T}/textfile/pgb_restore_drill.prom"
    assert_success
    assert_output ''
    took="$(drill_series pgb_drill_last_duration_seconds svc_a)"
    lag="$(drill_series pgb_drill_last_recovery_lag_seconds svc_a)"
    printf '# drill from %s: svc_a restored in %s s, recovered %s s behind the drill start\n' "${copy}" "${took}" "${lag}" >&3
    (( took >= 1 && took <= t1 - t0 ))
    # Recovered to that commit (the raw WAL is streamed; the archive was made after it): no older.
    (( lag <= t1 - commit + 1 ))
    [[ -n "$(drill_series pgb_drill_last_recovery_lag_seconds svc_b)" ]]
    assert_equal "$(drill_series pgb_drill_last_exit_status svc_a)" 0
  done
  stop_receiver
}

@test "--into-container undoes a DROP TABLE in the container; the receiver resumes on the new timeline; a later PITR crosses the switch; --rollback" {
  start_receiver svc_a
  pgb_wait_for "svc_a's slot to be active" 120 receiver_diagnose docker_slot_active svc_a
  docker_psql svc_a_pg -c "INSERT INTO notes (body) SELECT 'kept ' || g FROM generate_series(1, 50) g"
  local digest before_drop before
  digest="$(docker_table_digest svc_a_pg notes id)"
  before_drop="$(docker_utc_now svc_a_pg)"
  docker_psql svc_a_pg -c 'DROP TABLE notes'
  before="$(wal_segments svc_a)"
  docker_psql svc_a_pg -c 'SELECT pg_switch_wal()' >/dev/null
  pgb_wait_for "the segment with the DROP" 120 receiver_diagnose wal_segments_above svc_a "${before}"

  pgb_run_script into pgb-restore.sh restore --service svc_a --into-container --target-time "${before_drop}" 3>&-
  assert_success
  assert_log_lines_stamped "${PGB_LAST_LOG}"
  assert_output --partial "stopping its WAL receiver (pid ${RECEIVER_PID}) for the restore"
  assert_output --partial 'recovery finished in svc_a_pg; it was promoted'
  assert_output --partial 'undo: '
  pgb_started_remove pgid "${RECEIVER_PID}"
  # The table is back as it was the second before the DROP, in the service's own container.
  assert_equal "$(docker_table_digest svc_a_pg notes id)" "${digest}"
  assert_equal "$(docker_psql svc_a_pg -c 'SELECT timeline_id FROM pg_control_checkpoint()')" 2
  # The previous data is kept beside the volume, the staged WAL is gone from the data dir.
  local voldir
  voldir="$(docker_volume_dir svc_a_pgdata)"
  [[ -f "$(ls -d "$(dirname "${voldir}")"/pgb-previous-*)/PG_VERSION" ]]
  [[ ! -e "${voldir}/pgb_restore_wal" ]]
  # The receiver was restarted by the restore: its slot is recreated and it streams timeline 2.
  RECEIVER_PID="$(receiver_pid svc_a)"
  pgb_started_add pgid "${RECEIVER_PID}"
  pgb_wait_for "svc_a's new slot to be active" 120 receiver_diagnose docker_slot_active svc_a
  docker_psql svc_a_pg -c "INSERT INTO notes (body) SELECT 'after ' || g FROM generate_series(1, 30) g"
  local after digest_after
  digest_after="$(docker_table_digest svc_a_pg notes id)"
  after="$(docker_utc_now svc_a_pg)"
  docker_psql svc_a_pg -c "INSERT INTO notes (body) VALUES ('too late')" -c 'SELECT pg_switch_wal()' >/dev/null
  pgb_wait_for "a complete segment of timeline 2" 120 receiver_diagnose timeline_segment svc_a 00000002
  [[ -f "${PGB_ARTIFACTS}/wal/svc_a/00000002.history" ]]

  # The nightly's base backup is of timeline 1: recovering it to a time on timeline 2 follows the switch.
  mkdir -p "${PGB_T}/restore"
  pgb_run_script pitr-tl2 pgb-restore.sh restore --service svc_a --dest "${PGB_T}/restore/tl2" --target-time "${after}" --verify
  assert_success
  run docker_query_datadir "${PGB_DOCKER_IMAGE}" "${PGB_T}/restore/tl2" \
    "SELECT count(*) || '|' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY id)), '-') FROM notes t"
  assert_output "${digest_after}"

  # --rollback: the data from before the restore (the table dropped) is back, on timeline 1.
  pgb_run_script rollback pgb-restore.sh restore --service svc_a --rollback 3>&-
  assert_success
  assert_output --partial 'rolled back: svc_a_pg runs on its previous data again'
  pgb_started_remove pgid "${RECEIVER_PID}"
  RECEIVER_PID="$(receiver_pid svc_a)"
  pgb_started_add pgid "${RECEIVER_PID}"
  assert_equal "$(docker_psql svc_a_pg -c "SELECT to_regclass('notes') IS NULL")" t
  assert_equal "$(docker_psql svc_a_pg -c 'SELECT timeline_id FROM pg_control_checkpoint()')" 1
  pgb_wait_for "svc_a's slot to be active after the rollback" 120 receiver_diagnose docker_slot_active svc_a
  stop_receiver
}

@test "a stopped container: a clear error naming it, nothing half done, the other service still backed up" {
  local before_a before_b
  before_a="$(pgb_promoted svc_a | wc -l)"
  before_b="$(pgb_promoted svc_b | wc -l)"
  pgb_service_stop svc_b
  pgb_nightly stopped "" none
  expect_rc 1 "${PGB_BACKUP_RC}" "${PGB_T}/logs/stopped.backup.log"
  assert_file_contains "${PGB_T}/logs/stopped.backup.log" '\[svc_b\] container svc_b_pg is not running (docker start svc_b_pg)'
  assert_equal "$(pgb_promoted svc_a | wc -l)" "$((before_a + 1))"
  assert_equal "$(pgb_promoted svc_b | wc -l)" "${before_b}"
  assert_equal "$(pgb_temp_dirs)" ''
  # The receiver refuses too, before it makes a slot or a directory.
  pgb_run_script recv-stopped pgb_receivewal.sh svc_b
  assert_failure
  assert_output --partial 'container svc_b_pg is not running'
}

@test "a missing container and one of another major version: refused by name, nothing half done" {
  local before_b
  before_b="$(pgb_promoted svc_b | wc -l)"
  tdocker rename svc_b_pg svc_b_pg_away
  pgb_nightly missing "" none
  expect_rc 1 "${PGB_BACKUP_RC}" "${PGB_T}/logs/missing.backup.log"
  assert_file_contains "${PGB_T}/logs/missing.backup.log" '\[svc_b\] container svc_b_pg does not exist'
  # A PostgreSQL 15 container under the name the config gives a 17 service.
  tdocker stop svc_b_pg_away >/dev/null
  docker_service_run svc_b_pg svc_b_pg15data "$(docker_image_for_major 15)" 55712
  pgb_nightly othermajor "" none
  expect_rc 1 "${PGB_BACKUP_RC}" "${PGB_T}/logs/othermajor.backup.log"
  assert_file_contains "${PGB_T}/logs/othermajor.backup.log" '\[svc_b\] container svc_b_pg runs PostgreSQL 15, the config says pgVersion 17'
  # Restoring the 17 backup into it is refused before the container is touched.
  local voldir
  voldir="$(docker_volume_dir svc_b_pg15data)"
  pgb_run_script into15 pgb-restore.sh restore --service svc_b --into-container 3>&-
  assert_failure
  assert_output --partial 'container svc_b_pg runs PostgreSQL 15'
  assert_output --partial 'the backup is PostgreSQL 17; nothing was changed'
  assert_equal "$(tdocker inspect -f '{{.State.Running}}' svc_b_pg)" true
  assert_equal "$(cat "${voldir}/PG_VERSION")" 15
  assert_equal "$(find "$(dirname "${voldir}")" -mindepth 1 -maxdepth 1 -name 'pgb-*' | wc -l)" 0
  assert_equal "$(pgb_promoted svc_b | wc -l)" "${before_b}"
  assert_equal "$(pgb_temp_dirs)" ''
}
