# Real PostgreSQL clusters (initdb + pg_ctl as the postgres user) on 127.0.0.1 ports,
# standing in for the dockerized services. Unix sockets live in one private directory.

PGB_PG_VERSION="${PGB_PG_VERSION:-15}"
PGB_PG_BIN="/usr/lib/postgresql/${PGB_PG_VERSION}/bin"
export PGB_PG_VERSION PGB_PG_BIN

pg_sock_dir() { printf '%s/pg/sock' "${PGB_T}"; }

# pg_sock_dir_make: the private socket directory, made for postgres when missing.
pg_sock_dir_make() {
  local sock
  sock="$(pg_sock_dir)"
  [[ -d "${sock}" ]] && return 0
  mkdir -p "${sock}"
  chown postgres:postgres "$(dirname "${sock}")" "${sock}"
  chmod 0700 "${sock}"
}

# Runs from / : the checkout may sit where postgres cannot enter (a 0700 temp dir, /root),
# and psql would then print "could not change directory" into the output under test.
pg_as_postgres() {
  (cd / && runuser -u postgres -- "$@")
}

# pg_cluster_create DATADIR PORT: initdb, loopback only, enough WAL senders for killed
# pg_basebackups (their walsenders linger), for a test machine: fsync and synchronous_commit off,
# WAL segments of PGB_WAL_SEGSIZE MiB (default 1, not 16: base backups carry whole segments, small
# ones keep every copy, verify and archive fast). A production server's durable settings, for the
# tests that measure when a commit reaches the WAL: docker_service_run ... durable.
pg_cluster_create() {
  local dir="$1" port="$2" sock segsize="${PGB_WAL_SEGSIZE:-1}"
  sock="$(pg_sock_dir)"
  pg_sock_dir_make
  mkdir -p "$(dirname "${dir}")"
  chown postgres:postgres "$(dirname "${dir}")"
  pg_as_postgres "${PGB_PG_BIN}/initdb" -D "${dir}" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --wal-segsize="${segsize}" >"${dir}.initdb.log" 2>&1
  cat >>"${dir}/postgresql.conf" <<EOF
# pgb-gen integration test cluster
port = ${port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${sock}'
password_encryption = 'scram-sha-256'
max_wal_senders = 10
max_replication_slots = 10
wal_level = replica
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = on
logging_collector = off
EOF
}

# pg_cluster_start DATADIR [POSTGRES_OPTIONS]: starts the cluster and registers it for teardown.
pg_cluster_start() {
  local dir="$1"
  local opts="${2:-}"
  # 3>&-: a daemon holding bats' fd 3 would keep bats waiting forever.
  pgb_started_add pg "${dir}"
  pg_as_postgres "${PGB_PG_BIN}/pg_ctl" -D "${dir}" -l "${dir}.log" -w -t 300 ${opts:+-o "${opts}"} start >/dev/null 3>&- || {
    printf 'cluster %s did not start within 300 s\n' "${dir}" >&2
    pgb_tail_file "${dir}.log" >&2
    return 1
  }
}

# pg_cluster_stop DATADIR: fast shutdown (immediate if that hangs); a no-op when not running.
pg_cluster_stop() {
  local dir="$1"
  if [[ -f "${dir}/postmaster.pid" ]]; then
    pg_as_postgres "${PGB_PG_BIN}/pg_ctl" -D "${dir}" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      pg_as_postgres "${PGB_PG_BIN}/pg_ctl" -D "${dir}" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  pgb_started_remove pg "${dir}"
}

# pg_out_of_recovery PORT: the cluster on PORT accepts read-write transactions.
pg_out_of_recovery() {
  [[ "$(pg_psql "$1" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" == f ]]
}

# Diagnostics of a restored copy that did not finish recovery: its server log (QUERY_LOG).
pg_query_diagnose() {
  pgb_tail_file "${QUERY_LOG}"
}

# pg_query_datadir DATADIR PORT SQL: starts a data directory (a restored copy, recovered or not)
# on the private socket only, waits until it is out of recovery, prints what SQL returns, stops it.
pg_query_datadir() {
  local dir="$1" port="$2" sql="$3" out rc=0
  pg_sock_dir_make
  chown -R postgres: "${dir}"
  [[ ! -d "${dir}-wal" ]] || chown -R postgres: "${dir}-wal"
  # The server log lies beside the data dir, in a directory postgres may not write to.
  touch "${dir}.log"
  chown postgres: "${dir}.log"
  if ! pg_cluster_start "${dir}" "-c port=${port} -c listen_addresses='' -c unix_socket_directories=$(pg_sock_dir) -c archive_mode=off"; then
    cat "${dir}.log" >&2
    return 1
  fi
  if ! QUERY_LOG="${dir}.log" pgb_wait_for "${dir} to finish recovery" 300 pg_query_diagnose pg_out_of_recovery "${port}"; then
    pg_cluster_stop "${dir}"
    return 1
  fi
  out="$(pg_psql "${port}" -c "${sql}")" || rc=$?
  pg_cluster_stop "${dir}"
  printf '%s\n' "${out}"
  return "${rc}"
}

pg_cluster_running() {
  pg_as_postgres "${PGB_PG_BIN}/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# pg_psql PORT [psql args...]: superuser psql over the private socket, unaligned, tuples only.
pg_psql() {
  local port="$1"
  shift
  pg_as_postgres "${PGB_PG_BIN}/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$(pg_sock_dir)" -p "${port}" -d postgres "$@"
}

# pg_apply_hba DATADIR SNIPPET: pg_hba.conf = local trust for the superuser's socket, then the
# generated replication rules verbatim, then SCRAM for everything else; reloads the server.
pg_apply_hba() {
  local dir="$1" snippet="$2" port
  port="$(sed -n "s/^port = \([0-9]*\)$/\1/p" "${dir}/postgresql.conf" | tail -n 1)"
  {
    printf '# pgb-gen integration test: socket for the test harness\n'
    printf 'local   all             all                                     trust\n'
    cat "${snippet}"
    printf 'host    all             all             127.0.0.1/32            scram-sha-256\n'
  } >"${dir}/pg_hba.conf"
  chown postgres:postgres "${dir}/pg_hba.conf"
  pg_psql "${port}" -c 'SELECT pg_reload_conf()' >/dev/null
  # A rule PostgreSQL could not parse shows up here with its error.
  [[ "$(pg_psql "${port}" -c 'SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL')" == "0" ]]
}

# pg_apply_role PORT SQL_FILE USER PASSWORD_FILE: runs the generated role SQL with its psql
# variables set on stdin (the password never reaches a command line), quoted for psql as
# apply-replication-role.sh quotes them (backslashes and single quotes doubled).
pg_apply_role() {
  local port="$1" sql="$2" user="$3" pass_file="$4" pass
  pass="$(head -n 1 "${pass_file}")"
  pass="${pass//\\/\\\\}"
  {
    printf '\\set repl_user %s\n' "'${user}'"
    printf '\\set repl_password %s\n' "'${pass//\'/\'\'}'"
    cat "${sql}"
  } | pg_psql "${port}" -f - >/dev/null
}

# pg_target_psql TARGET [psql args...]: superuser psql into a host cluster (TARGET its port: pg_psql)
# or a service container (TARGET its name: docker_psql), unaligned, tuples only.
pg_target_psql() {
  if [[ "$1" =~ ^[0-9]+$ ]]; then
    pg_psql "$@"
  else
    docker_psql "$@"
  fi
}

# pg_table_digest TARGET TABLE ORDER_BY: "rows|md5 of every row in order" of a table of database
# postgres (TARGET as pg_target_psql's).
pg_table_digest() {
  local target="$1" table="$2" order="$3"
  pg_target_psql "${target}" \
    -c "SELECT count(*) || '|' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY ${order})), '-') FROM ${table} t"
}

# pg_fill_random TARGET TABLE MIB: appends MIB MiB of incompressible rows (fresh random bytes)
# (TARGET as pg_target_psql's).
pg_fill_random() {
  local target="$1" table="$2" mib="$3"
  pg_target_psql "${target}" -c 'SET client_min_messages = warning' \
    -c "CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, payload bytea)" \
    -c "ALTER TABLE ${table} ALTER COLUMN payload SET STORAGE EXTERNAL" \
    -c "INSERT INTO ${table} (payload)
        SELECT decode(string_agg(md5(random()::text || clock_timestamp()::text || g::text || r::text), ''), 'hex')
        FROM generate_series(1, ${mib} * 16) AS r, generate_series(1, 4096) AS g GROUP BY r" \
    -c 'CHECKPOINT' >/dev/null
}

# pg_fill_compressible TARGET TABLE MIB: a big table that compresses well (slow backups, small
# archives) (TARGET as pg_target_psql's).
pg_fill_compressible() {
  local target="$1" table="$2" mib="$3"
  pg_target_psql "${target}" -c 'SET client_min_messages = warning' \
    -c "CREATE TABLE IF NOT EXISTS ${table} (id bigint, filler text)" \
    -c "ALTER TABLE ${table} SET (autovacuum_enabled = off)" \
    -c "INSERT INTO ${table} SELECT g, repeat('pgb', 300) FROM generate_series(1, ${mib} * 1024) g" \
    -c 'CHECKPOINT' >/dev/null
}
