#!/usr/bin/env bats
# Monitoring (SPEC 9) of a dev machine on real parts: a test sshd on 127.0.0.1 running the
# GENERATED forced command (sudo -n rsync --daemon with the GENERATED rsyncd config) for the
# GENERATED authorized_keys line, the generated dev pull over it, the dev's pgb-status.sh and
# pgb-check.sh, a real HTTP receiver standing in for the webhook and the dead man's switch, and
# e-mail through the host's MTA (exim4) into a local mailbox. The server side is a backup tree with
# a base backup named as the nightly names it. Time passes under faketime (pulls and checks alike).
# The key logs in as root on this sshd (the pull user and its sudo rule are pull_security.bats').

SSHD_PORT=55621
RECORDER_PORT=55622
PG_PORT=55623

setup_file() {
  load helpers/load
  load helpers/http_recorder
  load helpers/monitor
  pgb_require_root
  pgb_ensure_pkg faketime faketime
  pgb_ensure_pkg jq jq
  pgb_ensure_pkg curl curl
  pgb_ensure_pkg promtool prometheus
  pgb_scratch_init
  local t="${PGB_T}"
  export SRV="pgbmon-srv-$$" DEV="pgbmon-dev-$$" PGB_MAIL_USER="pgbmond$$"
  export RSYNCD_LIVE="/etc/pgb-gen/rsyncd-${SRV}.conf"
  export TREE="${t}/backup" KEY="${t}/dev/key" KNOWN_HOSTS="${t}/dev/known_hosts" PULLED="${t}/dev/pulled"
  export PGB_TEXTFILE="${t}/dev/textfile" PGB_MONITOR_STATE_DIR="${t}/dev/monitor"
  mkdir -p "${t}/dev" "${t}/sshd" "${PGB_TEXTFILE}" "${t}/secrets"
  pgb_sshd_privsep_dir
  ssh-keygen -q -t ed25519 -N '' -C "${DEV}" -f "${KEY}"
  ssh-keygen -q -t ed25519 -N '' -C host -f "${t}/sshd/host_key"
  printf '[127.0.0.1]:%s %s\n' "${SSHD_PORT}" "$(cut -d' ' -f1,2 "${t}/sshd/host_key.pub")" >"${KNOWN_HOSTS}"
  chmod 600 "${KNOWN_HOSTS}"
  real_backup
  server_backs_up "$(date -u +%Y-%m-%dT%H_%M_%SZ)"
  : >"${TREE}/postgres/.pgb-sentinel"
  http_recorder_start "${RECORDER_PORT}"
  url_file webhook "${HTTP_RECORDER_URL}/ntfy/pgb-test"
  url_file deadman "${HTTP_RECORDER_URL}/deadman"
  mail_user_add
  write_config "${t}/pgb.config.yaml"
  pgb_generate "${t}/pgb.config.yaml" "${t}/out" >"${t}/logs/build.log" 2>&1
  export PGB_SBIN="${t}/out/${DEV}/root/usr/local/sbin"
  if [[ ! -d /etc/pgb-gen ]]; then
    install -d -m 0755 -o root -g root /etc/pgb-gen
    : >"${t}/created-etc-pgb-gen"
  fi
  # The daemon's hard-link check runs from the generated server tree (it is not installed here).
  sed "s|^pre-xfer exec = .*|pre-xfer exec = ${t}/out/${SRV}/root/usr/local/sbin/pgb_pull_links.sh|" \
    "${t}/out/${SRV}/root${RSYNCD_LIVE}" >"${t}/rsyncd.conf"
  install -m 0644 -o root -g root "${t}/rsyncd.conf" "${RSYNCD_LIVE}"
  grep -v -e '^#' -e '^$' "${t}/out/${SRV}/snippets/authorized_keys" >"${t}/sshd/authorized_keys"
  cat >"${t}/sshd/sshd_config" <<EOF
Port ${SSHD_PORT}
ListenAddress 127.0.0.1
HostKey ${t}/sshd/host_key
PidFile ${t}/sshd/sshd.pid
AuthorizedKeysFile ${t}/sshd/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin forced-commands-only
AllowUsers root
LogLevel VERBOSE
EOF
  /usr/sbin/sshd -t -f "${t}/sshd/sshd_config"
  sshd_start
}

teardown_file() {
  load helpers/load
  load helpers/monitor
  [[ -n "${PGB_T:-}" ]] || return 0
  rm -f -- "${RSYNCD_LIVE}"
  if [[ -f "${PGB_T}/created-etc-pgb-gen" ]]; then
    rmdir /etc/pgb-gen 2>/dev/null || true
  fi
  sshd_stop
  mail_user_remove
  pgb_teardown_all
}

setup() {
  load helpers/load
  load helpers/http_recorder
  load helpers/monitor
  pgb_sshd_privsep_dir
}


# A test that failed half-way leaves the next one a reachable server.
teardown() {
  [[ -f "${PGB_T}/sshd/sshd.pid" ]] || sshd_start
}

write_config() {
  cat >"$1" <<EOF
version: 1
servers:
  - name: ${SRV}
    host: 127.0.0.1
    ssh: { port: ${SSHD_PORT}, user: root }
    paths:
      backupMount: ${TREE}
      artifacts: ${TREE}/postgres
      configArtifacts: ${TREE}/config
      lockFile: ${PGB_T}/run/server.lock
    repos: { primary: ${TREE}/borg, external: null }
    borg: { passphraseFile: ${PGB_T}/secrets/pg-borg.env }
    replication: { passwordFile: ${PGB_T}/secrets/repl_password }
    services:
      - { name: svc, port: 55629, pgVersion: 15 }
devs:
  - name: ${DEV}
    pullFrom: [${SRV}]
    address: 127.0.0.1
    publicKey: "$(cat "${KEY}.pub")"
    localBase: ${PULLED}
    sshKey: ${KEY}
    knownHosts: ${KNOWN_HOSTS}
    lockFile: ${PGB_T}/dev/pull.lock
    monitoring:
      textfileDir: ${PGB_TEXTFILE}
      notify:
        webhookUrlFile: ${PGB_T}/secrets/webhook.url
        deadManUrlFile: ${PGB_T}/secrets/deadman.url
        email: ${PGB_MAIL_USER}@localhost
EOF
}

sshd_start() {
  /usr/sbin/sshd -D -f "${PGB_T}/sshd/sshd_config" -E "${PGB_T}/logs/sshd.log" 3>&- &
  printf '%s\n' "$!" >"${PGB_T}/sshd/pid"
  pgb_started_add pid "$!"
  pgb_wait_for "the test sshd on 127.0.0.1:${SSHD_PORT}" 120 sshd_diagnose pgb_port_open "${SSHD_PORT}"
}

# The server goes away: its sshd stops (by pid), the port refuses connections.
sshd_stop() {
  local pid
  [[ -f "${PGB_T}/sshd/pid" ]] || return 0
  pid="$(cat "${PGB_T}/sshd/pid")"
  kill -TERM "${pid}" 2>/dev/null || true
  pgb_wait_for "the test sshd to stop" 60 - pgb_pid_gone "${pid}"
  pgb_started_remove pid "${pid}"
  rm -f "${PGB_T}/sshd/pid" "${PGB_T}/sshd/sshd.pid"
}

sshd_diagnose() {
  pgb_tail_file "${PGB_T}/logs/sshd.log"
}

# server_backs_up STAMP: the server's nightly left a base backup taken at STAMP (UTC, as named).
# One real base backup of PostgreSQL 15 (the dev pull keeps only what its pg_verifybackup accepts):
# every night of the fake server is a copy of it under that night's name.
real_backup() {
  pg_cluster_create "${PGB_T}/pg/svc" "${PG_PORT}"
  pg_cluster_start "${PGB_T}/pg/svc"
  mkdir -p "${PGB_T}/real"
  chown postgres: "${PGB_T}/real"
  pg_as_postgres "${PGB_PG_BIN}/pg_basebackup" -h "$(pg_sock_dir)" -p "${PG_PORT}" -U postgres \
    -D "${PGB_T}/real/backup" -Fp -X stream -c fast --no-sync
  pg_cluster_stop "${PGB_T}/pg/svc"
  chown -R root:root "${PGB_T}/real"
}

server_backs_up() {
  local base="${TREE}/postgres/basebackups/svc_basebackup_$1"
  mkdir -p "${TREE}/postgres/basebackups" "${TREE}/postgres/wal/svc" "${TREE}/config"
  cp -a -- "${PGB_T}/real/backup" "${base}"
  chmod -R go-rwx "${TREE}/postgres"
}

# pull [OFFSET]: one run of the generated dev pull, OFFSET (faketime -f, like +27h) from now.
pull() {
  local -a pre=()
  [[ -z "${1:-}" ]] || pre=(env TZ=UTC faketime -f "$1")
  pgb_script_cmd pull-server-backups.sh
  pgb_run_logged "pull" "${pre[@]}" "${PGB_CMD[@]}"
}

# check_at [HOURS]: a pgb-check.sh run HOURS from now (none: now).
check_at() {
  if [[ -z "${1:-}" ]]; then
    check_run
  else
    check_run "$(date -u -d "now $1 hours" '+%Y-%m-%d %H:%M:%S')"
  fi
}

@test "a healthy dev machine: pulled, drilled, every check OK, its textfiles lint-clean, the dead man's switch pinged" {
  pull
  assert_success
  # The weekly drill of the pulled copy (drill_dev.bats has it on a streamed WAL).
  run bash "${PGB_SBIN}/pgb-restore.sh" drill
  assert_success
  run bash "${PGB_SBIN}/pgb-status.sh"
  assert_success
  assert_output --regexp "pull:${SRV} +OK"
  assert_output --regexp "pulled_basebackup:${SRV}/svc +OK"
  assert_output --regexp "drill:${SRV}/svc +OK"
  local f
  for f in pgb_pull.prom pgb_restore_drill.prom; do
    run promtool check metrics <"${PGB_TEXTFILE}/${f}"
    assert_success
    assert_output ''
  done
  assert_equal "$(stat -c %a "${PGB_TEXTFILE}/pgb_pull.prom")" 644
  run grep -E "^pgb_pull_newest_basebackup_timestamp_seconds\\{server=\"${SRV}\",service=\"svc\"\\} [1-9]" "${PGB_TEXTFILE}/pgb_pull.prom"
  assert_success
  http_recorder_reset
  check_at
  run http_recorder_requests 'select(.path == "/deadman") | .body'
  assert_output --partial "OK"
  assert_equal "$(webhook_titles | wc -l)" 0
}

@test "the server unreachable: WARNING at the first failed pull, still WARNING after 27 h, CRITICAL after 51 h, then OK" {
  local t0
  http_recorder_reset
  seq_reset
  pull
  assert_success
  check_at
  sshd_stop
  t0="${SECONDS}"
  pull
  assert_failure
  check_at
  printf '# server unreachable: alert %s s after the failed pull (one checker run after it)\n' "$((SECONDS - t0))" >&3
  pull +27h
  assert_failure
  check_at 27
  pull +51h
  assert_failure
  check_at 51
  sshd_start
  pull
  assert_success
  check_at
  assert_equal "$(seq_of "pull:${SRV}")" 'OK WARNING WARNING CRITICAL OK'
  run webhook_bodies
  assert_output --partial "WARNING pull:${SRV} (was OK): last pull FAILED"
  assert_output --partial "CRITICAL pull:${SRV} (was WARNING)"
  assert_output --partial "RECOVERED pull:${SRV} (was CRITICAL)"
  # Each change once, in order, also by e-mail.
  pgb_wait_for "the recovery mail in /var/mail/${PGB_MAIL_USER}" 120 mail_diagnose mailbox_has 3
  run mailbox_subjects
  assert_equal "$(grep -c "${DEV}: RECOVERED" <<<"${output}")" 1
  assert_equal "$(sed -n '$p' <<<"${output}" | grep -c "${DEV}: RECOVERED")" 1
}

@test "the server answers but stopped backing up: seen from the dev by the newest pulled base backup's age" {
  http_recorder_reset
  seq_reset
  pull
  assert_success
  check_at
  # Days pass, every pull works, the server's newest base backup stays the same.
  pull +51h
  assert_success
  check_at 51
  pull +75h
  assert_success
  check_at 75
  run env TZ=UTC faketime -f +75h bash "${PGB_SBIN}/pgb-status.sh"
  assert_equal "${status}" 2
  assert_output --regexp "pulled_basebackup:${SRV}/svc +CRITICAL"
  # The server backs up again: the next pull brings a base backup of that day.
  server_backs_up "$(date -u -d 'now 75 hours' +%Y-%m-%dT%H_%M_%SZ)"
  pull +75h
  assert_success
  check_at 75
  assert_equal "$(seq_of "pulled_basebackup:${SRV}/svc")" 'OK WARNING CRITICAL OK'
  assert_equal "$(seq_of "pull:${SRV}")" 'OK OK OK OK'
  run webhook_bodies
  assert_output --partial "WARNING pulled_basebackup:${SRV}/svc (was OK): newest pulled base backup"
  assert_output --partial "CRITICAL pulled_basebackup:${SRV}/svc (was WARNING)"
  assert_output --partial "RECOVERED pulled_basebackup:${SRV}/svc (was CRITICAL)"
}

# job_metric NAME: the value of NAME{job="pull-wal"} in the WAL pull's textfile.
job_metric() {
  sed -n "s/^$1{job=\"pull-wal\"} //p" "${PGB_TEXTFILE}/pgb_pull_wal.prom"
}

@test "the WAL pull reports as its own job: a success, a run the nightly pull made needless (75) a success, an unreachable server a failure" {
  local success fd
  pgb_script_cmd pull-server-backups.sh
  pgb_run_logged pull-wal "${PGB_CMD[@]}" --wal-only
  assert_success
  run promtool check metrics <"${PGB_TEXTFILE}/pgb_pull_wal.prom"
  assert_success
  assert_output ''
  assert_equal "$(stat -c %a "${PGB_TEXTFILE}/pgb_pull_wal.prom")" 644
  assert_equal "$(job_metric pgb_job_last_exit_status)" 0
  success="$(job_metric pgb_job_last_success_timestamp_seconds)"
  (( success > $(date -u +%s) - 120 ))

  # The nightly pull holds the lock: the WAL pull leaves the WAL to it, and that is no failure.
  exec {fd}>"${PGB_T}/dev/pull.lock"
  flock -x "${fd}"
  pgb_run_logged pull-wal-busy "${PGB_CMD[@]}" --wal-only
  exec {fd}>&-
  assert_equal "${status}" 75
  assert_equal "$(job_metric pgb_job_last_exit_status)" 0
  assert_equal "$(job_metric pgb_job_consecutive_failures)" 0

  # The server unreachable: a failure, counted, the last success kept.
  sshd_stop
  pgb_run_logged pull-wal-down "${PGB_CMD[@]}" --wal-only
  sshd_start
  assert_failure
  assert_equal "$(job_metric pgb_job_last_exit_status)" "${status}"
  assert_equal "$(job_metric pgb_job_consecutive_failures)" 1
  (( $(job_metric pgb_job_last_success_timestamp_seconds) >= success ))
  run promtool check metrics <"${PGB_TEXTFILE}/pgb_pull_wal.prom"
  assert_output ''
}
