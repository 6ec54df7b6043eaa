# The test server's services as containers (PGB_DOCKER=yes in server.bash): one container
# NAME_pg of the test image on the volume NAME_pgdata per service, on --network host at its
# port, prepared with the server README's own steps (section 5), run as they stand: the
# replication role through `docker exec`, then the pg_hba rules put at the top of each
# container's pg_hba.conf and the reload.

readonly PGB_README_PREPARE='## 5. Prepare each PostgreSQL container'

pgb_host_out() { printf '%s/out/%s' "${PGB_T}" "${PGB_SERVER_NAME}"; }

docker_services_up() {
  local name pids=() pid
  # In parallel: each container's initdb and start is most of the wait.
  for name in $(pgb_service_names); do
    docker_service_run "${name}_pg" "${name}_pgdata" "${PGB_DOCKER_IMAGE}" "$(pg_service_port "${name}")" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do
    wait "${pid}" || return 1
  done
  pgb_mark setup: containers up
  docker_readme_prepare "$(pgb_host_out)"
}

# docker_readme_prepare HOST_DIR: the README's section 5 of the host's generated tree HOST_DIR, run
# as it stands on the running containers NAME_pg: block 1, the role (its password fed on stdin);
# block 2, pg_hba.conf and the reload. Then no rule PostgreSQL could not read. Needs PGB_SBIN (the
# tree's scripts) and BORG_BASE_DIR (readme_run_installed binds them where the README names them).
docker_readme_prepare() {
  local dir="$1" name step log
  for step in 1 2; do
    log="${PGB_T}/logs/readme-prepare-${step}.log"
    readme_run_installed "${dir}" "${dir}/README.md" "${PGB_README_PREPARE}" "${step}" >"${log}" 2>&1 ||
      { cat "${log}" >&2; return 1; }
  done
  for name in $(pgb_service_names); do
    [[ "$(docker_psql "${name}_pg" -c 'SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL')" == 0 ]] || {
      printf '%s: pg_hba.conf has rules PostgreSQL could not read\n' "${name}_pg" >&2
      return 1
    }
  done
}

# docker_suite_setup "NAME:PORT ..." ROWS: a suite's server with PostgreSQL 17 container services
# (WAL streamed), each loaded with pgbench -s 2 and a notes table of ROWS rows.
docker_suite_setup() {
  pgb_require_root
  pgb_ensure_pkg borg borgbackup
  pgb_require_stable_borg_host_id
  export PGB_SERVICES="$1" PGB_PG_VERSION=17 PGB_DOCKER=yes PGB_WAL=true
  pgb_server_setup
  local name
  for name in $(pgb_service_names); do
    pgb_load_pgbench "${name}" 2
    docker_psql "${name}_pg" -c 'CREATE TABLE notes (id serial PRIMARY KEY, body text)' \
      -c "INSERT INTO notes (body) SELECT '${name} ' || g FROM generate_series(1, $2) g"
  done
  pgb_mark setup: data loaded
}

# ---- state of a container service, to wait on ------------------------------------------------

# docker_utc_now CONTAINER: the server's clock, as --target-time takes it.
docker_utc_now() {
  docker_psql "$1" -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
}

# docker_slot_active SERVICE: its WAL receiver streams (the slot pgb_SERVICE is active).
docker_slot_active() {
  [[ "$(docker_psql "$1_pg" -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgb_$1'")" == t ]]
}

# wal_segments SERVICE: complete WAL segments received; wal_segments_above SERVICE N: more than N.
wal_segments() {
  find "${PGB_ARTIFACTS}/wal/$1" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l
}

wal_segments_above() {
  (( $(wal_segments "$1") > $2 ))
}

# receiver_pid SERVICE: the pid of the receiver pgb-restore.sh started again (from the pid file
# it writes when not run by systemd); fails with its log when it is not running.
receiver_pid() {
  local pid file="${PGB_T}/run/pgb-receivewal-$1.pid"
  pgb_wait_for "the $1 receiver's pid file" 60 - test -s "${file}" || true
  if ! pid="$(cat "${file}" 2>/dev/null)" || ! kill -0 "${pid}" 2>/dev/null; then
    printf 'receiver of %s not running\n' "$1" >&2
    pgb_tail_file "${PGB_T}/run/pgb-receivewal-$1.log" >&2
    return 1
  fi
  printf '%s\n' "${pid}"
}

# docker_tables_digest CONTAINER "TABLE:ORDER_BY ...": one "TABLE rows|md5" line per table (the
# disaster suites' row-for-row comparison).
docker_tables_digest() {
  local t
  for t in $2; do
    printf '%s %s\n' "${t%%:*}" "$(docker_table_digest "$1" "${t%%:*}" "${t##*:}")"
  done
}
