#!/usr/bin/env bats
# The dev machine's WAL pull (issue 18), for real: a server as pgb_server_setup makes it (a
# PostgreSQL 15 cluster with 16 MiB segments, the generated role and pg_hba, the backup disk) with
# the GENERATED pgb_receivewal.sh streaming, the GENERATED rsync daemon config served to the pull
# key through a real sshd, and the GENERATED dev pull script run by hand: the nightly once, then
# `--wal-only`. Measured and printed: how long after a commit returns it is on the dev machine when
# a WAL pull runs (the RPO at the default walSchedule is that plus up to its 5 minutes), the bytes
# a WAL pull moves on an idle and on a busy service (rsync's own count); then a restore from the
# dev copy alone says where recovery ended.

PORT=55852

setup_file() {
  load helpers/load
  pgb_require_root
  export PGB_SERVICES="svc:55851" PGB_WAL=true PGB_WAL_SEGSIZE=16 PGB_SSH_PORT="${PORT}" PGB_SSH_USER=root
  export DEV=devbox
  PGB_DEVS_YAML="$(pgb_dev_devs_yaml "${DEV}" itest)"
  export PGB_DEVS_YAML
  pgb_server_setup
  pgb_pull_daemon_start "${PORT}"
  export STORE="${DEV_BASE}/itest/postgres"
  export PULL="${PGB_T}/out/${DEV}/root/usr/local/sbin/pull-server-backups.sh"
  export DEV_RESTORE="${PGB_T}/out/${DEV}/root/usr/local/sbin/pgb-restore.sh"
  export PORT_SVC=55851

  pgb_receiver_start svc
}

teardown_file() {
  load helpers/load
  [[ -n "${PGB_T:-}" ]] || return 0
  pgb_sshd_stop
  pgb_teardown_all
}

setup() {
  load helpers/load
}

now() { date +%s.%N; }

# wal_pull LOG: one WAL pull by hand; sets status/output and PULL_BYTES: the bytes it received
# over the wire (rsync's own count, the transfer and its dry run; the sentinel's listing is not
# counted), from the line the script logs.
wal_pull() {
  pgb_run_logged "$1" bash "${PULL}" --wal-only
  PULL_BYTES="$(sed -n 's/.* received \([0-9]*\) bytes over the wire (the dry run before it: \([0-9]*\)).*/\1 \2/p' "${PGB_LAST_LOG}" \
    | awk '{ s += $1 + $2 } END { print s + 0 }')"
}

@test "the nightly pull keeps a verified real base backup; the WAL pull then adds only new WAL" {
  pgb_nightly night1 "" none
  assert_equal "${PGB_BACKUP_RC}" 0
  pgb_run_logged pull-night1 bash "${PULL}"
  assert_equal "${status}" 0
  assert_output --partial "verified and kept: svc_basebackup_"
  pg_psql "${PORT_SVC}" -c "CREATE TABLE marks (id serial PRIMARY KEY, tag text, at timestamptz DEFAULT clock_timestamp())"
  pgb_wait_for "the receiver to flush" 60 pgb_receiver_log pgb_wal_flushed "${PORT_SVC}"
  wal_pull wal1
  assert_equal "${status}" 0
  assert_output --partial "[itest] WAL pulled; newest here: svc/"
  assert_log_lines_stamped "${PGB_LAST_LOG}"
  # The segment being written is here, and nothing of the base backups moved.
  assert [ -n "$(find "${STORE}/wal/svc" -name '*.partial' -print -quit)" ]
  assert_equal "$(find "${STORE}/basebackups" -mindepth 1 -maxdepth 1 | wc -l)" 1
}

@test "RPO: a commit is on the dev machine when the next WAL pull returns (measured), bytes idle and busy" {
  local i t0 t1 lat max=0 sum=0 idle=0 busy lsn0 lsn1 walbytes
  for i in 1 2 3; do
    pg_psql "${PORT_SVC}" -c "INSERT INTO marks (tag) VALUES ('rpo-${i}')"
    t0="$(now)"
    pgb_wait_for "the receiver to flush" 60 pgb_receiver_log pgb_wal_flushed "${PORT_SVC}"
    wal_pull "rpo-${i}"
    t1="$(now)"
    assert_equal "${status}" 0
    lat="$(awk -v a="${t0}" -v b="${t1}" 'BEGIN { printf "%.1f", b - a }')"
    sum="$(awk -v a="${sum}" -v b="${lat}" 'BEGIN { print a + b }')"
    max="$(awk -v a="${max}" -v b="${lat}" 'BEGIN { print (b > a ? b : a) }')"
  done
  # Idle: no commit since the last pull.
  for i in 1 2 3; do
    wal_pull "idle-${i}"
    assert_equal "${status}" 0
    idle=$(( idle + PULL_BYTES ))
  done
  idle=$(( idle / 3 ))
  # Busy: 60 s of pgbench at 50 transactions per second, then one pull.
  pgb_load_pgbench svc 1
  pgb_wait_for "the receiver to flush" 60 pgb_receiver_log pgb_wal_flushed "${PORT_SVC}"
  wal_pull before-busy
  lsn0="$(pg_psql "${PORT_SVC}" -c "SELECT pg_current_wal_lsn()")"
  pg_as_postgres "${PGB_PG_BIN}/pgbench" -n -c 2 -R 50 -T 60 -h "$(pg_sock_dir)" -p "${PORT_SVC}" postgres >"${PGB_T}/logs/pgbench.log" 2>&1
  lsn1="$(pg_psql "${PORT_SVC}" -c "SELECT pg_current_wal_lsn()")"
  walbytes="$(pg_psql "${PORT_SVC}" -c "SELECT pg_wal_lsn_diff('${lsn1}', '${lsn0}')::bigint")"
  pgb_wait_for "the receiver to flush" 60 pgb_receiver_log pgb_wal_flushed "${PORT_SVC}"
  wal_pull busy
  assert_equal "${status}" 0
  busy="${PULL_BYTES}"
  printf '# WAL pull by hand after a commit: commit -> on the dev machine in %s s on average, %s s at most (3 commits);\n' \
    "$(awk -v s="${sum}" 'BEGIN { printf "%.1f", s / 3 }')" "${max}" >&3
  printf '# so the RPO of the dev copy at walSchedule *:0/5 is at most 300 s + %s s (half that on average)\n' "${max}" >&3
  printf '# bytes over the wire per WAL pull: idle %s (x12 = %s per hour); busy (60 s of pgbench -R 50, %s bytes of WAL) %s\n' \
    "${idle}" "$(( idle * 12 ))" "${walbytes}" "${busy}" >&3
  printf '%s %s %s %s %s\n' "${max}" "${idle}" "${busy}" "${walbytes}" "${sum}" >"${PGB_T}/measured"
  # The pull's latency is seconds, not minutes; an idle pull moves kilobytes, not a segment.
  awk -v m="${max}" 'BEGIN { exit !(m < 60) }'
  (( idle < 1048576 ))
  (( busy > 0 ))
}

@test "a segment the server completes arrives as a delta against its .partial pulled before, not in full" {
  local seg
  pg_psql "${PORT_SVC}" -c "INSERT INTO marks (tag) SELECT 'fill-' || g FROM generate_series(1, 20000) g"
  pgb_wait_for "the receiver to flush" 60 pgb_receiver_log pgb_wal_flushed "${PORT_SVC}"
  wal_pull before-switch
  seg="$(find "${STORE}/wal/svc" -name '*.partial' -printf '%f\n' | sort | tail -n 1)"
  [[ -n "${seg}" ]]
  pg_psql "${PORT_SVC}" -c "SELECT pg_switch_wal()" >/dev/null
  pg_psql "${PORT_SVC}" -c "INSERT INTO marks (tag) VALUES ('after-switch')"
  pgb_wait_for "the receiver to complete ${seg%.partial}" 60 pgb_receiver_log test -f "${PGB_ARTIFACTS}/wal/svc/${seg%.partial}"
  wal_pull after-switch
  assert_equal "${status}" 0
  assert [ -f "${STORE}/wal/svc/${seg%.partial}" ]
  assert [ ! -e "${STORE}/wal/svc/${seg}" ]
  cmp -- "${PGB_ARTIFACTS}/wal/svc/${seg%.partial}" "${STORE}/wal/svc/${seg%.partial}"
  printf '# the pull that brought the completed 16 MiB segment %s moved %s bytes over the wire\n' "${seg%.partial}" "${PULL_BYTES}" >&3
  (( PULL_BYTES < 4194304 ))
}

@test "with the server gone, the dev copy restores alone: the last commit is there, and it says where recovery ended" {
  pg_psql "${PORT_SVC}" -c "INSERT INTO marks (tag) VALUES ('last-before-loss')"
  pgb_wait_for "the receiver to flush" 60 pgb_receiver_log pgb_wal_flushed "${PORT_SVC}"
  wal_pull final
  assert_equal "${status}" 0
  local dest="${PGB_T}/restore-dev"
  run bash "${DEV_RESTORE}" restore --service svc --dest "${dest}" --verify
  assert_success
  assert_output --partial "[svc] the last transaction in the WAL: "
  assert_output --regexp "\[svc\] recovery ended at the last transaction replayed, [0-9-]+ [0-9:]+\+00 \([0-9. :-]+ UTC\); the newest WAL here was received [0-9-]+ [0-9:]+\+00, [0-9]+ s later"
  run pg_query_datadir "${dest}" 55853 "SELECT count(*) FROM marks WHERE tag = 'last-before-loss'"
  assert_output 1
}
