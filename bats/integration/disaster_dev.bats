#!/usr/bin/env bats
# Disaster day from a dev machine's copy (SPEC 11; server README 11.4), for real: PostgreSQL 15
# containers with their WAL streamed by the generated receivers, a night, and a dev machine that
# pulled through a real sshd with the generated hardened daemon config and the GENERATED dev pull:
# the nightly pull (base backups verified and kept), then WAL pulls after the day's commits.
# Chapter 11.4's bash block then runs as it stands, read from the generated README:
#   1. the backup disk died (its tmpfs unmounted, so wiped) and the services were damaged: every
#      service back in its container from the dev copy, with the commits made after the night;
#   2. the server gone (containers, volumes, tree and Borg state removed; new empty containers):
#      the same block, the dev copy alone (no Borg key needed).
# The one substitution: DEVCOPY (the chapter's ```text block: "root@dev:/path/") is the dev
# machine's copy as a local path, since both hosts are this machine. Runs as root, in the suite's
# network namespace.
#
#   bats bats/integration/disaster_dev.bats

load 'helpers/load'

readonly CHAPTER_DEV='### 11.4 From a dev machine'"'"'s copy (the backup disk died, or the server is gone)'
readonly TABLES='pgbench_accounts:aid pgbench_branches:bid pgbench_tellers:tid notes:id'
readonly SSH_PORT=55743

setup_file() {
  pgb_require_root
  pgb_ensure_pkg borg borgbackup
  pgb_require_stable_borg_host_id
  export PGB_SERVICES="dd_a:55741 dd_b:55742" PGB_PG_VERSION=15 PGB_DOCKER=yes PGB_TOOLS=host PGB_WAL=true
  export PGB_SSH_PORT="${SSH_PORT}" PGB_SSH_USER=root DEV=devbox
  PGB_DEVS_YAML="$(pgb_dev_devs_yaml "${DEV}" itest)"
  export PGB_DEVS_YAML
  pgb_server_setup
  local name
  for name in $(pgb_service_names); do
    pgb_load_pgbench "${name}" 2
    docker_psql "${name}_pg" -c 'CREATE TABLE notes (id serial PRIMARY KEY, body text)' \
      -c "INSERT INTO notes (body) SELECT '${name} night ' || g FROM generate_series(1, 300) g"
  done
  export PGB_README="${PGB_T}/out/${PGB_SERVER_NAME}/README.md"
  export PULL="${PGB_T}/out/${DEV}/root/usr/local/sbin/pull-server-backups.sh"
  grep -qxF "${CHAPTER_DEV}" "${PGB_README}"
  # The chapter's DEVCOPY ('root@DEV:PATH/'), its host part dropped: the dev machine is this one.
  DEVCOPY="$(readme_devcopy "${PGB_README}" "${DEV}")"
  [[ "${DEVCOPY}" == "${PGB_T}/dev/upload/${PGB_SERVER_NAME}/"?*/ ]] || { printf 'DEVCOPY in the README: %s\n' "${DEVCOPY}" >&2; return 1; }
  export DEVCOPY

  mkdir -p "${PGB_T}/dev"
  ssh-keygen -q -t ed25519 -N '' -C "${DEV}" -f "${PGB_T}/dev/key"
  pgb_pull_sshd_start "${PGB_T}/dev/key" "${SSH_PORT}" "${PGB_T}/dev/known_hosts"

  pgb_nightly night "" all
  [[ "${PGB_BACKUP_RC}" == 0 && "${PGB_BORG_RC}" == 0 ]] || {
    cat "${PGB_T}/logs/night.backup.log" "${PGB_T}/logs/night.borg.log" >&2
    return 1
  }
  pgb_run_logged dev-pull bash "${PULL}"
  [[ "${status}" == 0 ]] || { printf '%s\n' "${output}" >&2; return 1; }
  for name in $(pgb_service_names); do
    grep -q "verified and kept: ${name}_basebackup_" "${PGB_LAST_LOG}" || { cat "${PGB_LAST_LOG}" >&2; return 1; }
  done
  pgb_mark setup: done
}

teardown_file() {
  [[ -z "${PGB_T:-}" ]] || pgb_mark teardown
  # docker first: pgb_sshd_stop stops every pid the suite registered, dockerd among them.
  docker_stop
  pgb_sshd_stop
  pgb_teardown_all
}

setup() {
  pgb_mark "test: ${BATS_TEST_DESCRIPTION}"
}

receiver_log() {
  local name
  for name in $(pgb_service_names); do
    pgb_tail_file "${PGB_T}/logs/receivewal-${name}.log"
  done
}

@test "11.4 the backup disk died: every service back in its container from the dev copy, with the day's commits after the night" {
  local name pids=() pid
  # The day: receivers stream, the services take commits after the night, the dev's WAL pull runs.
  for name in $(pgb_service_names); do
    pgb_script_cmd pgb_receivewal.sh
    setsid "${PGB_CMD[@]}" "${name}" >"${PGB_T}/logs/receivewal-${name}.log" 2>&1 3>&- &
    pids+=("$!")
    pgb_started_add pgid "$!"
  done
  for name in $(pgb_service_names); do
    pgb_wait_for "${name}'s slot to be active" 120 receiver_log docker_slot_active "${name}"
    docker_psql "${name}_pg" -c "INSERT INTO notes (body) SELECT '${name} after the night ' || g FROM generate_series(1, 25) g"
  done
  local containers=()
  for name in $(pgb_service_names); do
    containers+=("${name}_pg")
  done
  pgb_wait_for "the receivers to flush the day's commits" 120 receiver_log pgb_wal_flushed "${containers[@]}"
  pgb_run_logged dev-wal bash "${PULL}" --wal-only
  assert_equal "${status}" 0
  for pid in "${pids[@]}"; do
    kill -TERM -- "-${pid}"
    pgb_wait_for "receiver ${pid} to stop" 60 receiver_log pgb_pid_gone "${pid}"
  done
  for name in $(pgb_service_names); do
    docker_tables_digest "${name}_pg" "${TABLES}" >"${PGB_T}/digest.${name}"
    grep -q '^notes 325|' "${PGB_T}/digest.${name}"
  done

  # The disk dies, the services are damaged.
  pgb_umount "${PGB_BACKUP_MOUNT}"
  [[ -z "$(ls -A "${PGB_BACKUP_MOUNT}")" ]]
  for name in $(pgb_service_names); do
    docker_psql "${name}_pg" -c 'DROP TABLE notes'
  done

  pgb_run_logged chapter readme_run_installed "${PGB_T}/out/${PGB_SERVER_NAME}" "${PGB_README}" "${CHAPTER_DEV}" 1
  [[ "${status}" == 0 ]] || { printf '%s\n' "${output}" >&2; false; }
  for name in $(pgb_service_names); do
    assert_output --partial "recovery finished in ${name}_pg; it was promoted"
    assert_output --partial "[${name}] the last transaction in the WAL: "
    assert_equal "$(docker_tables_digest "${name}_pg" "${TABLES}")" "$(cat "${PGB_T}/digest.${name}")"
  done
}

@test "11.4 the server gone: new empty containers, a fresh tree, no Borg state; the dev copy alone" {
  local name fresh="${PGB_T}/fresh"
  for name in $(pgb_service_names); do
    tdocker rm -f -v "${name}_pg" >/dev/null
    tdocker volume rm "${name}_pgdata" >/dev/null
  done
  rm -rf -- "${BORG_BASE_DIR}" "${PGB_T}/out"
  mkdir -p "${BORG_BASE_DIR}"
  pgb_generate "${PGB_T}/pgb.config.yaml" "${fresh}" >"${PGB_T}/logs/fresh-build.log" 2>&1
  export PGB_SBIN="${fresh}/${PGB_SERVER_NAME}/root/usr/local/sbin"
  # Step 2 of 11.3: each container as before, on a new empty volume.
  for name in $(pgb_service_names); do
    rm -f -- "${PGB_T}/secrets/${name}_pg.env"
    docker_service_run "${name}_pg" "${name}_pgdata" "${PGB_DOCKER_IMAGE}" "$(pg_service_port "${name}")"
    run docker_psql "${name}_pg" -c "SELECT to_regclass('notes') IS NULL"
    assert_output t
  done
  pgb_run_logged chapter-gone readme_run_installed "${fresh}/${PGB_SERVER_NAME}" "${fresh}/${PGB_SERVER_NAME}/README.md" "${CHAPTER_DEV}" 1
  [[ "${status}" == 0 ]] || { printf '%s\n' "${output}" >&2; false; }
  for name in $(pgb_service_names); do
    assert_equal "$(docker_tables_digest "${name}_pg" "${TABLES}")" "$(cat "${PGB_T}/digest.${name}")"
    assert_equal "$(docker_psql "${name}_pg" -c "SELECT rolreplication FROM pg_roles WHERE rolname = '${PGB_REPL_USER}'")" t
  done
}
