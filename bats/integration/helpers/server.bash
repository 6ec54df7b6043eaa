# One test server, end to end: scratch root, secrets, config, pgb-gen build, the backup disk and
# the external drive as tmpfs mounts, PostgreSQL clusters with the generated replication role and
# pg_hba rules, and both Borg repositories. Call pgb_server_setup from setup_file and
# pgb_teardown_all from teardown_file.
#
# Knobs: PGB_SERVICES (default three services on 127.0.0.1:55401-55403), PGB_BACKUP_SIZE (tmpfs
# size of the backup disk, default 2g), PGB_EXT_SIZE (of the external drive, default 1g),
# PGB_DOCKER=yes (the services are containers of the PGB_PG_VERSION test image, set up with the
# server README's steps: docker_services.bash), plus config.bash's.

pg_service_dir() { printf '%s/pg/%s' "${PGB_T}" "$1"; }

pg_service_port() {
  local spec
  for spec in ${PGB_SERVICES}; do
    if [[ "${spec%%:*}" == "$1" ]]; then
      printf '%s' "${spec##*:}"
      return 0
    fi
  done
  return 1
}

pgb_service_names() {
  local spec
  for spec in ${PGB_SERVICES}; do
    printf '%s\n' "${spec%%:*}"
  done
}

pgb_server_setup() {
  export PGB_SERVICES="${PGB_SERVICES:-service_a:55401 service_b:55402 service_c:55403}"
  pgb_require_root
  pgb_scratch_init
  pgb_mark setup: start
  pgb_test_paths

  # Host settings the nightly run copies (configPaths).
  mkdir -p "${PGB_HOST_CONFIG}/app.d"
  printf 'setting = %s\n' "${PGB_T##*/}" >"${PGB_HOST_CONFIG}/app.d/app.conf"

  pgb_repl_secret_init
  pgb_borg_secret_init "${PGB_PASSPHRASE_FILE}"
  pgb_mark setup: secrets
  if [[ "${PGB_DOCKER:-}" == yes ]]; then
    docker_start
    PGB_DOCKER_IMAGE="$(docker_image_for_major "${PGB_PG_VERSION}")"
    export PGB_DOCKER_IMAGE
    pgb_mark setup: docker
  fi
  pgb_write_config "${PGB_T}/pgb.config.yaml"
  pgb_generate "${PGB_T}/pgb.config.yaml" "${PGB_T}/out" >"${PGB_T}/logs/build.log" 2>&1
  export PGB_SBIN="${PGB_T}/out/${PGB_SERVER_NAME}/root/usr/local/sbin"
  export PGB_SNIPPETS="${PGB_T}/out/${PGB_SERVER_NAME}/snippets"
  local needed
  for needed in "${PGB_SBIN}/pg_backup_all.sh" "${PGB_SBIN}/borg_pg_artifacts.sh" \
    "${PGB_SNIPPETS}/replication-role.sql" "${PGB_SNIPPETS}/pg_hba.conf"; do
    if [[ ! -s "${needed}" ]]; then
      printf 'pgb-gen build did not produce %s\n' "${needed}" >&2
      return 1
    fi
  done

  pgb_mark setup: built
  pgb_mount_tmpfs "${PGB_BACKUP_MOUNT}" "${PGB_BACKUP_SIZE:-2g}"
  # tmpfs takes memory only for what is written: room for the default 600 MiB reserve costs nothing.
  pgb_mount_tmpfs "${PGB_EXT_MOUNT}" "${PGB_EXT_SIZE:-1g}"

  if [[ -n "${PGB_DOCKER_IMAGE:-}" ]]; then
    docker_services_up
  else
    pgb_clusters_up
  fi
  pgb_mark setup: services up
  pgb_borg_repo_init "${PGB_PRIMARY_REPO}"
  pgb_borg_repo_init "${PGB_EXT_REPO}" "${PGB_EXT_RESERVE:-629145600}"
  pgb_mark setup: repos
}

# Clusters standing in for the services: initdb in parallel, then start, harden and load each.
pgb_clusters_up() {
  local name pids=() pid
  while read -r name; do
    pg_cluster_create "$(pg_service_dir "${name}")" "$(pg_service_port "${name}")" &
    pids+=("$!")
  done < <(pgb_service_names)
  for pid in "${pids[@]}"; do
    wait "${pid}"
  done
  pgb_mark setup: initdb finished
  while read -r name; do
    pgb_service_start "${name}"
    pg_apply_hba "$(pg_service_dir "${name}")" "${PGB_SNIPPETS}/pg_hba.conf"
    pg_apply_role "$(pg_service_port "${name}")" "${PGB_SNIPPETS}/replication-role.sql" \
      "${PGB_REPL_USER}" "${PGB_REPL_PASS_FILE}"
  done < <(pgb_service_names)
}

pgb_service_start() {
  if [[ -n "${PGB_DOCKER_IMAGE:-}" ]]; then
    docker_service_start "$1_pg" "$(pg_service_port "$1")"
  else
    pg_cluster_start "$(pg_service_dir "$1")"
  fi
}

pgb_service_stop() {
  if [[ -n "${PGB_DOCKER_IMAGE:-}" ]]; then
    docker_service_stop "$1_pg"
  else
    pg_cluster_stop "$(pg_service_dir "$1")"
  fi
}

# pgb_service_running NAME: its container runs, or its cluster.
pgb_service_running() {
  if [[ -n "${PGB_DOCKER_IMAGE:-}" ]]; then
    [[ "$(tdocker inspect -f '{{.State.Running}}' "$1_pg" 2>/dev/null)" == true ]]
  else
    pg_cluster_running "$(pg_service_dir "$1")"
  fi
}

# pgb_load_pgbench NAME [SCALE]: pgbench tables with their standard data.
pgb_load_pgbench() {
  if [[ -n "${PGB_DOCKER_IMAGE:-}" ]]; then
    tdocker exec -u postgres "$1_pg" pgbench -i -q -s "${2:-1}" -p "$(pg_service_port "$1")" postgres >/dev/null 2>&1
    return
  fi
  pg_as_postgres "${PGB_PG_BIN}/pgbench" -i -q -s "${2:-1}" -h "$(pg_sock_dir)" -p "$(pg_service_port "$1")" postgres \
    >/dev/null 2>&1
}

# pgb_script_cmd SCRIPT: the command that runs a generated server script as an operator would
# (as root, from the build output), without the test's passphrase in its environment.
pgb_script_cmd() {
  PGB_CMD=(env -u BORG_PASSPHRASE "TMPDIR=${PGB_T}/tmp" "BORG_BASE_DIR=${BORG_BASE_DIR}"
    bash "${PGB_SBIN}/$1")
}

# pgb_run_script LOGNAME SCRIPT [ARGS...]: runs a generated script, logged (status, output).
pgb_run_script() {
  local log="$1" script="$2"
  shift 2
  pgb_script_cmd "${script}"
  pgb_run_logged "${log}" "${PGB_CMD[@]}" "$@"
}

# pgb_nightly LOGNAME [FAKE_TIME [TARGET]]: one night as the timers run it: base backups, then
# the Borg repositories (TARGET: all (default), primary, external, or none). FAKE_TIME
# ("YYYY-MM-DD HH:MM:SS", UTC; empty for now) runs the night at that date (faketime).
# Sets PGB_BACKUP_RC and PGB_BORG_RC; logs in logs/LOGNAME.backup.log and .borg.log.
# shellcheck disable=SC2034,SC2154 # status comes from pgb_run_logged; the RCs are for the tests
pgb_nightly() {
  local log="$1" when="${2:-}" target="${3:-all}"
  local -a pre=()
  if [[ -n "${when}" ]]; then
    pre=(env TZ=UTC faketime "${when}")
  fi
  pgb_script_cmd pg_backup_all.sh
  pgb_run_logged "${log}.backup" "${pre[@]}" "${PGB_CMD[@]}"
  PGB_BACKUP_RC="${status}"
  PGB_BORG_RC=""
  [[ "${target}" != none ]] || return 0
  pgb_script_cmd borg_pg_artifacts.sh
  pgb_run_logged "${log}.borg" "${pre[@]}" "${PGB_CMD[@]}" "${target}"
  PGB_BORG_RC="${status}"
}

# Promoted base backups of a service, oldest first (names sort by their UTC stamp).
pgb_promoted() {
  find "${PGB_BASE_DIR}" -mindepth 1 -maxdepth 1 -type d -name "$1_basebackup_*" -printf '%f\n' | sort
}

pgb_temp_dirs() {
  find "${PGB_BASE_DIR}" -mindepth 1 -maxdepth 1 -name '.tmp_*' -printf '%f\n' | sort
}

# ---- the server side of a real dev pull, and its WAL receiver (wal_pull.bats, drill_dev.bats) --------

# pgb_pull_sshd_start KEY PORT KNOWN_HOSTS: a real sshd on 127.0.0.1:PORT whose one key (KEY.pub)
# runs the GENERATED rsync daemon config as root (what sudo gives the pull key on a server); its
# pre-transfer check is the generated script, from where the build put it.
pgb_pull_sshd_start() {
  local key="$1" port="$2" known="$3" conf="${PGB_T}/sshd/rsyncd.conf"
  mkdir -p "${PGB_T}/sshd"
  sed "s|^pre-xfer exec = .*|pre-xfer exec = ${PGB_SBIN}/pgb_pull_links.sh|" \
    "${PGB_T}/out/${PGB_SERVER_NAME}/root/etc/pgb-gen/rsyncd-${PGB_SERVER_NAME}.conf" >"${conf}"
  grep -q "^use chroot = yes$" "${conf}"
  printf 'restrict,command="/usr/bin/rsync --server --daemon --config=%s ." %s\n' "${conf}" "$(cat "${key}.pub")" \
    >"${PGB_T}/sshd/authorized_keys"
  pgb_sshd_start "${PGB_T}/sshd" "${port}" root "${PGB_T}/sshd/authorized_keys" "${known}"
}

# pgb_receiver_start SERVICE: the generated WAL receiver of SERVICE in the background, as its unit
# runs it (logs/receivewal.log), registered for teardown; waits until it streams.
pgb_receiver_start() {
  "${PGB_SBIN}/pgb_receivewal.sh" "$1" >"${PGB_T}/logs/receivewal.log" 2>&1 </dev/null 3>&- &
  pgb_started_add pid "$!"
  pgb_wait_for "pg_receivewal of $1 to stream" 120 pgb_receiver_log pgb_receiver_streaming "$(pg_service_port "$1")"
}

pgb_receiver_log() {
  pgb_tail_file "${PGB_T}/logs/receivewal.log"
}

# pgb_receiver_streaming PORT: pg_receivewal streams from the cluster on PORT.
pgb_receiver_streaming() {
  [[ "$(pg_psql "$1" -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal'")" == 1 ]]
}

# pgb_wal_flushed TARGET...: the receiver has flushed everything each cluster (its port, or its
# service container's name: pg_target_psql) has inserted so far. The insert position, not the
# write position: with synchronous_commit off (the test cluster) a commit returns while its record
# may still be in the WAL buffers, behind pg_current_wal_lsn().
pgb_wal_flushed() {
  local target
  for target in "$@"; do
    [[ "$(pg_target_psql "${target}" -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal' AND flush_lsn >= pg_current_wal_insert_lsn()")" == 1 ]] || return 1
  done
}
