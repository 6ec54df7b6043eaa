#!/usr/bin/env bats
# Disaster day (SPEC 11): each chapter of the server README's section 11, run as it stands (its
# bash blocks read from the generated README) against PostgreSQL 17 containers on this 15-only
# host: a DROP TABLE undone into the container; the backup disk lost (its tmpfs unmounted, so
# wiped), every service restored from the USB drive's repository; the server gone (containers and
# volumes removed, a fresh tree, an empty Borg state dir, new empty containers) restored from the
# USB repository with the exported key and the passphrase. Data compared row for row.
# Runs as root, in the suite's network namespace.
#
#   bats bats/integration/disaster.bats

load 'helpers/load'

readonly CHAPTER_BROKEN='### 11.1 One service is broken (a `DROP TABLE`, a bad migration)'
readonly CHAPTER_DISK='### 11.2 The backup disk died'
readonly CHAPTER_GONE='### 11.3 The server is gone'

# Every table of the services, for the row-for-row comparison.
readonly TABLES='pgbench_accounts:aid pgbench_branches:bid pgbench_tellers:tid notes:id'

setup_file() {
  docker_suite_setup "dis_a:55731 dis_b:55732" 700
  # The keys as section 6 exports them (the repositories exist: only the export happens).
  pgb_run_script repo-init pgb_repo_init.sh
  [[ "${status}" == 0 ]] || { cat "${PGB_LAST_LOG}" >&2; return 1; }
  pgb_nightly night "" all
  [[ "${PGB_BACKUP_RC}" == 0 && "${PGB_BORG_RC}" == 0 ]] || {
    cat "${PGB_T}/logs/night.backup.log" "${PGB_T}/logs/night.borg.log" >&2
    return 1
  }
  # What every night's archive holds: the reference of chapters 2 and 3.
  while read -r name; do
    docker_tables_digest "${name}_pg" "${TABLES}" >"${PGB_T}/digest.${name}"
  done < <(pgb_service_names)
  export PGB_README="${PGB_T}/out/${PGB_SERVER_NAME}/README.md"
  pgb_mark setup: done
}

teardown_file() {
  [[ -z "${PGB_T:-}" ]] || pgb_mark teardown
  docker_stop
  pgb_teardown_all
}

setup() {
  pgb_mark "test: ${BATS_TEST_DESCRIPTION}"
}

receiver_log() {
  pgb_tail_file "${PGB_T}/logs/receivewal-dis_a.log"
  pgb_tail_file "${PGB_T}/run/pgb-receivewal-dis_a.log"
}

@test "11.1 one service broken: a DROP TABLE undone into its container to the second before it" {
  pgb_script_cmd pgb_receivewal.sh
  setsid "${PGB_CMD[@]}" dis_a >"${PGB_T}/logs/receivewal-dis_a.log" 2>&1 3>&- &
  pgb_started_add pgid "$!"
  pgb_wait_for "dis_a's slot to be active" 120 receiver_log docker_slot_active dis_a
  docker_psql dis_a_pg -c "INSERT INTO notes (body) SELECT 'today ' || g FROM generate_series(1, 40) g"
  local expected n before
  expected="$(docker_tables_digest dis_a_pg "${TABLES}")"
  BEFORE="$(docker_utc_now dis_a_pg)"
  export BEFORE
  docker_psql dis_a_pg -c 'DROP TABLE notes' -c 'DELETE FROM pgbench_accounts WHERE aid % 3 = 0'
  n="$(wal_segments dis_a)"
  docker_psql dis_a_pg -c 'SELECT pg_switch_wal()' >/dev/null
  pgb_wait_for "the WAL of the mistake" 120 receiver_log wal_segments_above dis_a "${n}"
  before="$(receiver_pid dis_a)"

  pgb_run_logged chapter1 readme_run_installed "${PGB_T}/out/${PGB_SERVER_NAME}" "${PGB_README}" "${CHAPTER_BROKEN}" 1
  [[ "${status}" == 0 ]] || { printf '%s\n' "${output}" >&2; false; }
  assert_output --partial 'recovery finished in dis_a_pg; it was promoted'
  assert_equal "$(docker_tables_digest dis_a_pg "${TABLES}")" "${expected}"
  # The other service was not touched; the receiver is a new one, streaming again.
  assert_equal "$(docker_tables_digest dis_b_pg "${TABLES}")" "$(cat "${PGB_T}/digest.dis_b")"
  local pid
  pid="$(receiver_pid dis_a)"
  [[ "${pid}" != "${before}" ]]
  pgb_started_add pgid "${pid}"
  pgb_wait_for "dis_a's slot to be active again" 120 receiver_log docker_slot_active dis_a
  kill -TERM "${pid}"
  pgb_wait_for "the receiver to stop" 60 receiver_log pgb_pid_gone "${pid}"
}

@test "11.2 the backup disk died: every service restored from the USB drive's repository" {
  # The disk is gone: its tmpfs unmounted (and so wiped), the mount point left empty.
  pgb_umount "${PGB_BACKUP_MOUNT}"
  [[ -z "$(ls -A "${PGB_BACKUP_MOUNT}")" ]]
  local name
  while read -r name; do
    docker_psql "${name}_pg" -c 'DROP TABLE IF EXISTS notes'
  done < <(pgb_service_names)
  pgb_run_logged chapter2 readme_run_installed "${PGB_T}/out/${PGB_SERVER_NAME}" "${PGB_README}" "${CHAPTER_DISK}" 1
  [[ "${status}" == 0 ]] || { printf '%s\n' "${output}" >&2; false; }
  while read -r name; do
    assert_equal "$(docker_tables_digest "${name}_pg" "${TABLES}")" "$(cat "${PGB_T}/digest.${name}")"
  done < <(pgb_service_names)
}

@test "11.3 the server gone: a fresh tree, an empty Borg state, new containers; USB repository, key file and passphrase" {
  local name fresh="${PGB_T}/fresh"
  # Nothing of the old server is left but the USB drive, the exported key and the passphrase.
  while read -r name; do
    tdocker rm -f -v "${name}_pg" >/dev/null
    tdocker volume rm "${name}_pgdata" >/dev/null
  done < <(pgb_service_names)
  rm -rf -- "${BORG_BASE_DIR}" "${PGB_T}/out"
  mkdir -p "${BORG_BASE_DIR}"
  pgb_generate "${PGB_T}/pgb.config.yaml" "${fresh}" >"${PGB_T}/logs/fresh-build.log" 2>&1
  export PGB_SBIN="${fresh}/${PGB_SERVER_NAME}/root/usr/local/sbin"
  # The operator's step 2: each container as before, on a new empty volume.
  while read -r name; do
    rm -f -- "${PGB_T}/secrets/${name}_pg.env"
    docker_service_run "${name}_pg" "${name}_pgdata" "${PGB_DOCKER_IMAGE}" "$(pg_service_port "${name}")"
    run docker_psql "${name}_pg" -c "SELECT to_regclass('notes') IS NULL"
    assert_output t
  done < <(pgb_service_names)
  pgb_run_logged chapter3 readme_run_installed "${fresh}/${PGB_SERVER_NAME}" "${fresh}/${PGB_SERVER_NAME}/README.md" "${CHAPTER_GONE}" 1
  [[ "${status}" == 0 ]] || { printf '%s\n' "${output}" >&2; false; }
  while read -r name; do
    assert_equal "$(docker_tables_digest "${name}_pg" "${TABLES}")" "$(cat "${PGB_T}/digest.${name}")"
    # The replication role came back with the data.
    assert_equal "$(docker_psql "${name}_pg" -c "SELECT rolreplication FROM pg_roles WHERE rolname = '${PGB_REPL_USER}'")" t
  done < <(pgb_service_names)
}
