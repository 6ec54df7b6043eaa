# Helpers of the point-in-time recovery suite: real PostgreSQL 15 clusters on loopback ports,
# run as the postgres user, a tmpfs as the backup disk, the generated scripts.
# Everything lives under one mktemp dir (PITR_TMP); teardown stops what setup started, by pid.

readonly PITR_PG_BIN=/usr/lib/postgresql/15/bin
# Ports reserved for this suite: 55420-55439.
readonly PITR_PORT_A=55420
readonly PITR_PORT_B=55421
readonly PITR_PORT_VERIFY=55430
readonly PITR_PORT_QUERY=55431
readonly PITR_REPL_PASSWORD='s3cret:with\back$lash'"'"'q'

# Runs a command as postgres, from /, with a clean environment.
as_postgres() {
  (cd / && setpriv --reuid=postgres --regid=postgres --init-groups -- \
    env -i PATH=/usr/bin:/bin LC_ALL=C TZ=UTC "$@")
}

# psql on a source cluster through its private socket: psql_on PORT SQL
psql_on() {
  as_postgres "${PITR_PG_BIN}/psql" -X -At -v ON_ERROR_STOP=1 -h "${PITR_TMP}/sock" -p "$1" -d postgres -c "$2"
}

# initdb + start a cluster that allows replication for repl_backup over TCP with SCRAM only.
start_cluster() {
  local name="$1" port="$2" data="${PITR_TMP}/pg/$1"
  as_postgres "${PITR_PG_BIN}/initdb" -D "${data}" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  cat >>"${data}/postgresql.conf" <<EOF
port = ${port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${PITR_TMP}/sock'
wal_level = replica
max_wal_senders = 10
EOF
  cat >"${data}/pg_hba.conf" <<EOF
local   all             all                             trust
host    replication     repl_backup     127.0.0.1/32    scram-sha-256
host    replication     all             0.0.0.0/0       reject
host    all             all             127.0.0.1/32    scram-sha-256
EOF
  as_postgres "${PITR_PG_BIN}/pg_ctl" -D "${data}" -l "${PITR_TMP}/pg/${name}.log" -w start >/dev/null
  psql_on "${port}" "CREATE ROLE repl_backup WITH LOGIN REPLICATION PASSWORD '$(sed "s/'/''/g" <<<"${PITR_REPL_PASSWORD}")'" >/dev/null
}

stop_cluster_dir() {
  local data="$1"
  if [[ -f "${data}/postmaster.pid" ]]; then
    as_postgres "${PITR_PG_BIN}/pg_ctl" -D "${data}" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

# One batch: 500 rows tagged with the batch number.
write_batch() {
  local port="$1" batch="$2"
  psql_on "${port}" "INSERT INTO pitr (batch, payload) SELECT ${batch}, md5('${batch}-' || g) FROM generate_series(1, 500) g" >/dev/null
}

# A fingerprint of the table per batch: "batch|rows|md5", one line per batch present.
batches_sql="SELECT batch || '|' || count(*) || '|' || md5(string_agg(id || ',' || payload, ';' ORDER BY id)) FROM pitr GROUP BY batch ORDER BY batch"

# Waits until the receiver of the cluster on PORT has flushed everything written so far.
wait_wal_flushed() {
  local port="$1" i
  for i in $(seq 1 200); do
    if [[ "$(psql_on "${port}" "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal' AND flush_lsn >= pg_current_wal_lsn()")" == 1 ]]; then
      return 0
    fi
    sleep 0.1
  done
  echo "WAL of port ${port} not flushed by the receiver within 20 s" >&2
  return 1
}

# Starts the receiver for a service in the background; its pid goes to PITR_TMP/recv_NAME.pid.
start_receiver() {
  local service="$1" port="$2" i
  "${SERVER_SBIN}/pgb_receivewal.sh" "${service}" >"${PITR_TMP}/recv_${service}.log" 2>&1 </dev/null 3>&- &
  echo $! >"${PITR_TMP}/recv_${service}.pid"
  for i in $(seq 1 100); do
    if [[ "$(psql_on "${port}" "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal'")" == 1 ]]; then
      return 0
    fi
    sleep 0.1
  done
  cat "${PITR_TMP}/recv_${service}.log" >&2
  return 1
}

stop_receiver() {
  local pid_file="${PITR_TMP}/recv_$1.pid" pid
  [[ -f "${pid_file}" ]] || return 0
  pid="$(cat "${pid_file}")"
  rm -f "${pid_file}"
  if kill -0 "${pid}" 2>/dev/null; then
    kill -TERM "${pid}"
    wait_pid_gone "${pid}"
  fi
}

wait_pid_gone() {
  local i
  for i in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# Starts a restored data dir (already recovered or not), runs SQL, stops it again.
query_restored() {
  local data="$1" sql="$2" out rc=0
  mkdir -p "${PITR_TMP}/qsock"
  chown postgres: "${PITR_TMP}/qsock"
  chown -R postgres: "${data}"
  [[ ! -d "${data}-wal" ]] || chown -R postgres: "${data}-wal"
  as_postgres "${PITR_PG_BIN}/pg_ctl" -D "${data}" -l "${PITR_TMP}/qsock/query.log" -w -t 120 start \
    -o "-c port=${PITR_PORT_QUERY} -c listen_addresses='' -c unix_socket_directories=${PITR_TMP}/qsock -c archive_mode=off" >/dev/null || {
    cat "${PITR_TMP}/qsock/query.log" >&2
    return 1
  }
  # Recovery may still be running: wait until the copy is promoted.
  local i
  for i in $(seq 1 300); do
    [[ "$(as_postgres "${PITR_PG_BIN}/psql" -X -At -h "${PITR_TMP}/qsock" -p "${PITR_PORT_QUERY}" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" == f ]] && break
    sleep 0.1
  done
  out="$(as_postgres "${PITR_PG_BIN}/psql" -X -At -v ON_ERROR_STOP=1 -h "${PITR_TMP}/qsock" -p "${PITR_PORT_QUERY}" -d postgres -c "${sql}")" || rc=$?
  as_postgres "${PITR_PG_BIN}/pg_ctl" -D "${data}" -m fast -w stop >/dev/null
  printf '%s\n' "${out}"
  return "${rc}"
}

# The first N lines of a fingerprint file (batches 1..N).
first_batches() {
  head -n "$2" "$1"
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
