#!/usr/bin/env bats
# The dev machine's weekly restore drill (issue 13), on a real pulled copy: a server as
# pgb_server_setup makes it (a PostgreSQL 15 cluster with 16 MiB segments, the generated role and
# pg_hba, the backup disk) with the GENERATED pgb_receivewal.sh streaming, the GENERATED rsync
# daemon config served to the pull key through a real sshd, the GENERATED dev pull run by hand
# (the nightly pull, then a WAL pull), then the GENERATED dev pgb-restore.sh drill: the pulled copy
# restored to the end of its WAL and verified with this machine's PostgreSQL, its duration and
# recovery lag in the dev's textfile (promtool-clean), its check in the dev's pgb-status.sh.

PORT_SVC=55761
PORT_SSH=55762

setup_file() {
  load helpers/load
  pgb_require_root
  pgb_ensure_pkg promtool prometheus
  export PGB_SERVICES="svc:${PORT_SVC}" PGB_WAL=true PGB_WAL_SEGSIZE=16 PGB_SSH_PORT="${PORT_SSH}" PGB_SSH_USER=root
  export DEV=devdrill
  export PGB_DEVS_YAML="devs:
  - name: ${DEV}
    pullFrom: [itest]
    address: 127.0.0.1
    localBase: @PGB_T@/dev/upload
    sshKey: @PGB_T@/dev/key
    knownHosts: @PGB_T@/dev/known_hosts
    lockFile: @PGB_T@/dev/pull.lock
    monitoring: { textfileDir: @PGB_T@/dev/textfile }"
  pgb_server_setup
  export KEY="${PGB_T}/dev/key" KNOWN_HOSTS="${PGB_T}/dev/known_hosts" TEXTFILE="${PGB_T}/dev/textfile"
  export DEV_SBIN="${PGB_T}/out/${DEV}/root/usr/local/sbin"
  export DRILL_PROM="${TEXTFILE}/pgb_restore_drill.prom"
  export STORE="${PGB_T}/dev/upload/itest/postgres"
  # The drill's scratch copies inside the test dir (the unit gives it a private /var/tmp).
  export TMPDIR="${PGB_T}/tmp"
  mkdir -p "${PGB_T}/dev" "${PGB_T}/sshd" "${TEXTFILE}"
  ssh-keygen -q -t ed25519 -N '' -C "${DEV}" -f "${KEY}"

  pgb_pull_sshd_start "${KEY}" "${PORT_SSH}" "${KNOWN_HOSTS}"
  pgb_receiver_start svc

  # The server's night, then the dev's nightly pull: a verified real base backup on the dev.
  pgb_nightly night1 "" none
  [[ "${PGB_BACKUP_RC}" == 0 ]] || { cat "${PGB_T}/logs/night1.backup.log" >&2; return 1; }
  pgb_run_logged pull-night1 bash "${DEV_SBIN}/pull-server-backups.sh"
  [[ "${status}" == 0 ]] || { printf '%s\n' "${output}" >&2; return 1; }
  pg_psql "${PORT_SVC}" -c "CREATE TABLE marks (id serial PRIMARY KEY, tag text, at timestamptz DEFAULT clock_timestamp())"
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

# drill_series NAME: the value of the drill's series NAME of itest's svc in the dev's textfile.
drill_series() {
  sed -n "s/^$1{service=\"svc\",server=\"itest\"} \([0-9][0-9]*\)$/\1/p" "${DRILL_PROM}"
}

dev_status() {
  pgb_run_logged "$1" bash "${DEV_SBIN}/pgb-status.sh"
}

@test "the drill restores the pulled copy to the end of its WAL: the last pulled commit recovered, duration and lag measured, its check OK" {
  # Before any drill, the dev's status says none was ever recorded.
  dev_status status-before
  assert_output --regexp "drill:itest/svc +CRITICAL +never .*no last successful restore drill recorded"
  # A commit reaches the dev by a WAL pull; one after that pull does not.
  pg_psql "${PORT_SVC}" -c "INSERT INTO marks (tag) VALUES ('pulled')"
  pgb_wait_for "the receiver to flush" 60 pgb_receiver_log pgb_wal_flushed "${PORT_SVC}"
  pgb_run_logged wal-pull bash "${DEV_SBIN}/pull-server-backups.sh" --wal-only
  assert_equal "${status}" 0
  local pulled_at t0 t1 took lag
  pulled_at="$(pg_psql "${PORT_SVC}" -c "SELECT floor(extract(epoch FROM at))::bigint FROM marks WHERE tag = 'pulled'")"
  pg_psql "${PORT_SVC}" -c "SELECT pg_sleep(2)" -c "INSERT INTO marks (tag) VALUES ('not pulled')" >/dev/null
  pgb_wait_for "the receiver to flush" 60 pgb_receiver_log pgb_wal_flushed "${PORT_SVC}"

  t0="$(date -u +%s)"
  pgb_run_logged drill bash "${DEV_SBIN}/pgb-restore.sh" drill
  t1="$(date -u +%s)"
  assert_equal "${status}" 0
  assert_log_lines_stamped "${PGB_LAST_LOG}"
  assert_output --partial "[svc] drill: restoring the newest backup from raw into ${TMPDIR}/pgb-drill."
  assert_output --partial "[svc] restoring svc_basebackup_"
  assert_output --partial " from ${STORE}/basebackups into "
  assert_output --regexp "\[svc\] the last transaction in the WAL: [0-9-]+ [0-9:]+\+00, [0-9]+ s before the newest WAL here"
  assert_output --regexp "\[svc\] recovery ended at the last transaction replayed, [0-9-]+ [0-9:]+\+00 "
  assert_output --regexp "\[svc\] drill passed: from raw in [0-9]+ s; recovered to [0-9-]+ [0-9:]+\+00, [0-9]+ s before the drill began"
  assert_output --partial 'restore drill: all 1 service(s) restored, recovered and answered'
  # The scratch copy is gone.
  assert_equal "$(find "${TMPDIR}" -mindepth 1 -maxdepth 1 -name 'pgb-drill.*' | wc -l)" 0

  # Its textfile: lint-clean, 0644, the series named by server and service.
  run promtool check metrics <"${DRILL_PROM}"
  assert_success
  assert_output ''
  assert_equal "$(stat -c %a "${DRILL_PROM}")" 644
  assert_equal "$(drill_series pgb_drill_last_exit_status)" 0
  took="$(drill_series pgb_drill_last_duration_seconds)"
  lag="$(drill_series pgb_drill_last_recovery_lag_seconds)"
  (( "$(drill_series pgb_drill_last_success_timestamp_seconds)" >= t0 ))
  # Whole seconds: a drill inside one second took 0.
  [[ "${took}" =~ ^[0-9]+$ ]]
  (( took <= t1 - t0 ))
  # Recovered to the pulled commit, not later (the other one never reached the dev), not earlier.
  (( lag >= t0 - pulled_at - 1 && lag <= t1 - pulled_at + 1 ))
  printf '# dev drill of the pulled copy: restored and verified in %s s; recovered %s s behind the drill start (the last pulled commit was %s s before it)\n' \
    "${took}" "${lag}" "$((t0 - pulled_at))" >&3
  run grep -E '^pgb_job_last_exit_status\{job="restore-drill"\} 0$' "${DRILL_PROM}"
  assert_success

  dev_status status-after
  assert_output --regexp "drill:itest/svc +OK +0h0[0-9]m"
}

@test "a drill that fails: exit 1, the service named, its last success kept, its check CRITICAL" {
  local success
  success="$(drill_series pgb_drill_last_success_timestamp_seconds)"
  [[ -n "${success}" ]]
  # The pulled base backups out of reach for one run.
  mv -- "${STORE}/basebackups" "${STORE}/basebackups.away"
  pgb_run_logged drill-bad bash "${DEV_SBIN}/pgb-restore.sh" drill
  mv -- "${STORE}/basebackups.away" "${STORE}/basebackups"
  assert_equal "${status}" 1
  assert_output --partial '[svc] drill FAILED (from raw)'
  assert_output --partial 'restore drill: 1 of 1 service(s) failed'
  assert_equal "$(drill_series pgb_drill_last_exit_status)" 1
  assert_equal "$(drill_series pgb_drill_last_success_timestamp_seconds)" "${success}"
  run grep -E '^pgb_job_consecutive_failures\{job="restore-drill"\} 1$' "${DRILL_PROM}"
  assert_success
  dev_status status-failed
  assert_equal "${status}" 2
  assert_output --regexp "drill:itest/svc +CRITICAL .*last restore drill FAILED \(journalctl -u pgb-restore-drill.service\)"
}
