#!/usr/bin/env bats
# Monitoring (SPEC 9) on real parts: two PostgreSQL clusters with their WAL receivers, real Borg
# repositories, tmpfs disks, the generated scripts writing their textfiles, promtool checking them,
# a real prometheus-node-exporter serving them (scraped with curl) and a real HTTP receiver standing
# in for ntfy, Healthchecks and the dead man's switch. Each fault is made for real, noticed by
# pgb-check.sh (named in a message), and cleared (a recovery message), with the state sequence of
# its check asserted.

RECORDER_PORT=55601
EXPORTER_PORT=55602

setup_file() {
  load helpers/load
  load helpers/http_recorder
  load helpers/node_exporter
  load helpers/monitor
  pgb_ensure_pkg promtool prometheus
  pgb_ensure_pkg curl curl
  pgb_ensure_pkg jq jq
  pgb_ensure_pkg faketime faketime
  export PGB_SERVICES="svc_a:55611 svc_b:55612"
  export PGB_WAL=true
  export PGB_SERVER_NAME=mon
  # Room for borg compact (it wants a free segment, ~550 MB); the "disk nearly full" fault fills the rest.
  export PGB_BACKUP_SIZE=1g
  # The e-mail recipient: a local user whose mailbox the host's MTA (exim4) delivers to.
  export PGB_MAIL_USER="pgbmon$$"
  pgb_server_setup
  mail_user_add
  export PGB_TEXTFILE="${PGB_T}/textfile"
  export PGB_MONITOR_STATE_DIR="${PGB_T}/monitor"
  mkdir -p "${PGB_TEXTFILE}"
  http_recorder_start "${RECORDER_PORT}"
  node_exporter_start "${EXPORTER_PORT}" "${PGB_TEXTFILE}"
  url_file webhook "${HTTP_RECORDER_URL}/ntfy/pgb-test"
  url_file healthchecks "${HTTP_RECORDER_URL}/hc/ping-key"
  url_file deadman "${HTTP_RECORDER_URL}/deadman"
  start_receiver svc_a
  start_receiver svc_b
}

teardown_file() {
  load helpers/load
  load helpers/monitor
  mail_user_remove
  pgb_teardown_all
}

setup() {
  load helpers/load
  load helpers/http_recorder
  load helpers/node_exporter
  load helpers/monitor
}

# A test that failed half-way leaves the next one a healthy server: clusters and receivers up,
# the drive plugged in, no ballast, the passphrase back, the endpoint up.
teardown() {
  local svc
  http_recorder_fail up
  rm -f "${PGB_BACKUP_MOUNT}/ballast"
  if [[ -f "${PGB_T}/passphrase.keep" ]]; then
    mv -f "${PGB_T}/passphrase.keep" "${PGB_PASSPHRASE_FILE}"
  fi
  if [[ -f "${PGB_T}/pg_control.keep" ]]; then
    mv -f "${PGB_T}/pg_control.keep" "${PGB_BASE_DIR}/$(pgb_promoted svc_a | tail -n 1)/global/pg_control"
  fi
  if ! pgb_is_mounted "${PGB_EXT_MOUNT}" && pgb_is_mounted "${PGB_T}/usb-unplugged"; then
    pgb_reattach "${PGB_EXT_MOUNT}" "${PGB_T}/usb-unplugged"
  fi
  for svc in svc_a svc_b; do
    pg_cluster_running "$(pg_service_dir "${svc}")" || pgb_service_start "${svc}"
    kill -0 "$(cat "${PGB_T}/receiver-${svc}.pid")" 2>/dev/null || start_receiver "${svc}"
  done
}

# The server's monitoring: block (config.bash calls it while writing the config).
pgb_config_monitoring() {
  printf '    monitoring:\n'
  printf '      textfileDir: %s\n' "${PGB_T}/textfile"
  printf '      notify:\n'
  printf '        webhookUrlFile: %s\n' "${PGB_T}/secrets/webhook.url"
  printf '        healthchecksUrlFile: %s\n' "${PGB_T}/secrets/healthchecks.url"
  printf '        deadManUrlFile: %s\n' "${PGB_T}/secrets/deadman.url"
  printf '        email: %s@localhost\n' "${PGB_MAIL_USER}"
  printf '      thresholds: { diskWarnFreeRatio: 0.15, diskCritFreeRatio: 0.05 }\n'
}

start_receiver() {
  local service="$1"
  pgb_script_cmd pgb_receivewal.sh
  setsid "${PGB_CMD[@]}" "${service}" </dev/null >>"${PGB_T}/logs/receiver-${service}.log" 2>&1 3>&- &
  printf '%s\n' "$!" >"${PGB_T}/receiver-${service}.pid"
  pgb_started_add pgid "$!"
  pgb_wait_for "the WAL receiver of ${service} streaming" 120 "receiver_diagnose_${service}" \
    receiver_streams "${service}"
}

receiver_diagnose_svc_a() { pgb_tail_file "${PGB_T}/logs/receiver-svc_a.log"; }
receiver_diagnose_svc_b() { pgb_tail_file "${PGB_T}/logs/receiver-svc_b.log"; }

receiver_streams() {
  [[ "$(pg_psql "$(pg_service_port "$1")" -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal' AND state = 'streaming'")" == 1 ]]
}

stop_receiver() {
  local pid
  pid="$(cat "${PGB_T}/receiver-$1.pid")"
  kill -TERM -- "-${pid}" 2>/dev/null || true
  pgb_wait_for "the receiver of $1 to stop" 60 - pgb_pid_gone "${pid}"
  pgb_started_remove pgid "${pid}"
}

# status [ARGS...]: pgb-status.sh as an operator runs it (logged; status and output set).
status() {
  pgb_run_script "status" pgb-status.sh "$@"
}

# The healthy state of the server: the night, its archives, the weekly check and the drill.
full_night() {
  pgb_nightly night
  [[ "${PGB_BACKUP_RC}" == 0 && "${PGB_BORG_RC}" == 0 ]] || { cat "${PGB_T}/logs/night.backup.log" "${PGB_T}/logs/night.borg.log" >&2; return 1; }
}

@test "a healthy night: every check OK, every textfile lint-clean, node_exporter serves them" {
  full_night
  pgb_run_script borgcheck borg_pg_artifacts.sh check all
  assert_success
  pgb_run_script drill pgb-restore.sh drill
  assert_success
  status
  printf '# pgb-status.sh on a healthy night:\n' >&3
  sed 's/^/#   /' "${PGB_LAST_LOG}" >&3
  assert_success
  assert_output --partial 'OK - '
  refute_output --regexp ' (WARNING|CRITICAL|UNKNOWN) '
  status --nagios
  assert_success
  assert_output --regexp "^PGB mon OK - [0-9]+ check\(s\): 0 critical, 0 warning, 0 unknown \| 'basebackup:svc_a'=[0-9]+s;93600;180000"
  status --json
  assert_success
  run jq -r '.state, (.checks | length), ([.checks[] | select(.state != "OK")] | length)' <<<"${output}"
  assert_line --index 0 OK
  assert_line --index 2 0
  check_run
  # A first run with everything OK sends no message, but pings the dead man's switch.
  assert_equal "$(webhook_titles | wc -l)" 0
  run http_recorder_requests 'select(.path == "/deadman") | .body'
  assert_output --partial 'PGB mon OK'
  # Every job wrote its textfile, mode 0644, and promtool finds nothing to lint in any.
  local f
  for f in backup_all borg_primary borg_external borg_check restore_drill receivewal_svc_a receivewal_svc_b status check; do
    assert [ -f "${PGB_TEXTFILE}/pgb_${f}.prom" ]
    assert_equal "$(stat -c %a "${PGB_TEXTFILE}/pgb_${f}.prom")" 644
    run promtool check metrics <"${PGB_TEXTFILE}/pgb_${f}.prom"
    assert_success
    assert_output ''
  done
  # No temp file left behind by the atomic writes.
  assert_equal "$(find "${PGB_TEXTFILE}" -name '.*' -type f | wc -l)" 0
  run node_exporter_scrape
  assert_success
  assert_line 'node_textfile_scrape_error 0'
  for f in pgb_basebackup_last_success_timestamp_seconds pgb_basebackup_last_size_bytes pgb_wal_receiver_streaming \
    pgb_wal_slot_retained_bytes pgb_wal_last_segment_timestamp_seconds pgb_borg_last_archive_timestamp_seconds \
    pgb_filesystem_avail_bytes pgb_borg_last_check_success_timestamp_seconds pgb_drill_last_success_timestamp_seconds \
    pgb_drill_last_duration_seconds pgb_job_last_success_timestamp_seconds pgb_job_last_exit_status; do
    assert_output --partial "# TYPE ${f} gauge"
  done
  assert_output --regexp 'pgb_wal_receiver_streaming\{service="svc_a"\} 1'
  assert_output --regexp 'pgb_borg_last_archive_timestamp_seconds\{repo="external"\} [1-9]'
  printf '%s\n' "${output}" | grep '^pgb_' | sed 's/ .*//; s/{.*//' | sort -u >"${PGB_T}/logs/metric-names.txt"
  # The generated rules are valid Prometheus rules.
  run promtool check rules "${PGB_T}/out/mon/snippets/pgb-alerts.rules.yml"
  assert_success
  # They fire for this host's series only, and name it: promtool evaluates them on two hosts.
  cat >"${PGB_T}/rules-test.yml" <<EOF
rule_files: ['${PGB_T}/out/mon/snippets/pgb-alerts.rules.yml']
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - { series: 'pgb_wal_receiver_streaming{host="mon",service="svc_a",instance="mon:9100"}', values: '0x10' }
      - { series: 'pgb_wal_receiver_streaming{host="other",service="svc_a",instance="other:9100"}', values: '0x10' }
      - { series: 'pgb_check_last_run_timestamp_seconds{host="other",instance="other:9100"}', values: '0+60x10' }
      - { series: 'pgb_wal_receiver_starts_total{host="mon",service="svc_b",instance="mon:9100"}', values: '1+1x70' }
    alert_rule_test:
      - eval_time: 5m
        alertname: PgbWalReceiverNotStreaming
        exp_alerts:
          - exp_labels: { severity: critical, host: mon, service: svc_a, instance: 'mon:9100' }
            exp_annotations: { summary: 'WAL receiver of svc_a is not streaming (systemctl status pgb-receivewal@svc_a)' }
      - eval_time: 65m
        alertname: PgbWalReceiverFlapping
        exp_alerts:
          - exp_labels: { severity: warning, host: mon, service: svc_b, instance: 'mon:9100' }
            exp_annotations: { summary: 'WAL receiver of svc_b restarted more than 5 times in an hour (journalctl -u pgb-receivewal@svc_b)' }
      - eval_time: 40m
        alertname: PgbCheckerAbsent
        exp_alerts:
          - exp_labels: { severity: critical, host: mon }
            exp_annotations: { summary: 'No pgb-gen metrics scraped at all (node_exporter textfile directory?)' }
EOF
  run promtool test rules "${PGB_T}/rules-test.yml"
  assert_success
  # Run by hand, no job pings Healthchecks: that is systemd's OnSuccess=/OnFailure= (pgb-notify@).
  run http_recorder_requests 'select(.path | startswith("/hc/")) | .path'
  assert_output ''
}

@test "a cluster down during the nightly: the failing service is named, the others' metrics are fresh, then it recovers" {
  local before_a before_b t0 t1
  http_recorder_reset
  seq_reset
  check_run
  before_a="$(metric_value pgb_basebackup_last_success_timestamp_seconds 'service="svc_a"')"
  before_b="$(metric_value pgb_basebackup_last_success_timestamp_seconds 'service="svc_b"')"
  stop_receiver svc_b
  pgb_service_stop svc_b
  # The nightly's success stamps are whole seconds: the next one must be a later second.
  pgb_wait_for "the clock to pass the last success stamp" 60 - clock_after "${before_a}"
  t0="${SECONDS}"
  pgb_nightly broken "" none
  assert_equal "${PGB_BACKUP_RC}" 1
  check_run
  t1="${SECONDS}"
  printf '# cluster down: alert %s s after the failed nightly (the checker ran at once; at most one checkSchedule period on a host)\n' "$((t1 - t0))" >&3
  # svc_b failed and kept its old success time; svc_a's is fresh.
  assert_equal "$(metric_value pgb_basebackup_last_exit_status 'service="svc_b"')" 1
  assert_equal "$(metric_value pgb_basebackup_last_success_timestamp_seconds 'service="svc_b"')" "${before_b}"
  (( $(metric_value pgb_basebackup_last_success_timestamp_seconds 'service="svc_a"') > before_a ))
  assert_equal "$(metric_value pgb_basebackup_last_exit_status 'service="svc_a"')" 0
  assert_equal "$(metric_value pgb_job_last_exit_status 'job="backup-all"')" 1
  status
  printf '# pgb-status.sh on a broken night (svc_b down):\n' >&3
  sed 's/^/#   /' "${PGB_LAST_LOG}" >&3
  assert_equal "${status}" 2
  assert_output --regexp 'basebackup:svc_b +CRITICAL .*last nightly run FAILED: pg_basebackup failed'
  assert_output --regexp 'basebackup:svc_a +OK'
  run webhook_titles
  assert_output 'mon: CRITICAL (3 change(s))'
  run webhook_bodies
  assert_output --partial 'CRITICAL basebackup:svc_b (was OK): last nightly run FAILED'
  assert_output --partial 'CRITICAL wal_receiver:svc_b (was OK)'
  refute_output --partial 'basebackup:svc_a'
  # The same message by e-mail: the host's MTA delivered it to the local mailbox.
  pgb_wait_for "the alert mail in /var/mail/${PGB_MAIL_USER}" 120 mail_diagnose mailbox_has 1
  run mailbox_subjects
  assert_output --regexp '^\[pgb [a-z0-9]+\] mon: CRITICAL \(3 change\(s\)\)$'
  run grep -c 'CRITICAL basebackup:svc_b (was OK): last nightly run FAILED' "/var/mail/${PGB_MAIL_USER}"
  assert_output 1

  pgb_service_start svc_b
  start_receiver svc_b
  pgb_nightly fixed "" none
  assert_equal "${PGB_BACKUP_RC}" 0
  check_run
  assert_equal "$(seq_of basebackup:svc_b)" 'OK CRITICAL OK'
  assert_equal "$(seq_of basebackup:svc_a)" 'OK OK OK'
  run webhook_titles
  assert_line --index 1 'mon: RECOVERED (3 change(s))'
  run webhook_bodies
  assert_output --partial 'RECOVERED basebackup:svc_b (was CRITICAL)'
  pgb_wait_for "the recovery mail in /var/mail/${PGB_MAIL_USER}" 120 mail_diagnose mailbox_has 2
  run mailbox_subjects
  assert_line --index 1 --regexp 'mon: RECOVERED \(3 change\(s\)\)$'
}

clock_after() {
  (( $(date +%s) > $1 ))
}

# metric_value NAME LABELS: the value of a series in the scrape of node_exporter.
metric_value() {
  local series="$1"
  [[ -z "$2" ]] || series="$1{$2}"
  node_exporter_scrape | awk -v s="${series}" '$1 == s { printf "%.0f\n", $2 }'
}

@test "the WAL receiver stopped while writes go on: not streaming, retained WAL growing, alert in one check run" {
  local r0 r1 t0
  http_recorder_reset
  seq_reset
  check_run
  stop_receiver svc_a
  t0="${SECONDS}"
  pg_fill_random 55611 churn 2
  pg_psql 55611 -c 'SELECT pg_switch_wal()' >/dev/null
  check_run
  printf '# WAL receiver stopped: alert %s s after the stop (one checker run)\n' "$((SECONDS - t0))" >&3
  r0="$(metric_value pgb_wal_slot_retained_bytes 'service="svc_a",slot="pgb_svc_a"')"
  assert_equal "$(metric_value pgb_wal_receiver_streaming 'service="svc_a"')" 0
  pg_fill_random 55611 churn 2
  check_run
  r1="$(metric_value pgb_wal_slot_retained_bytes 'service="svc_a",slot="pgb_svc_a"')"
  (( r0 > 1048576 && r1 > r0 )) || fail "retained WAL did not grow: ${r0} then ${r1}"
  run webhook_bodies
  assert_output --partial 'CRITICAL wal_receiver:svc_a (was OK): no pg_receivewal streams'
  start_receiver svc_a
  # Caught up: the slot's restart position follows the server again.
  pgb_wait_for "the slot of svc_a to catch up" 120 - slot_caught_up svc_a
  check_run
  assert_equal "$(seq_of wal_receiver:svc_a)" 'OK CRITICAL CRITICAL OK'
  assert_equal "$(seq_of wal_receiver:svc_b)" 'OK OK OK OK'
  run webhook_titles
  assert_line --index 0 'mon: CRITICAL (1 change(s))'
  assert_line --index 1 'mon: RECOVERED (1 change(s))'
}

slot_caught_up() {
  [[ "$(state_of "wal_retained:$1")" == OK ]] &&
    (( $(pg_psql "$(pg_service_port "$1")" -c "SELECT pg_current_wal_lsn() - restart_lsn FROM pg_replication_slots WHERE slot_name = 'pgb_$1'") < 1048576 ))
}

@test "an idle database with a live receiver stays OK: liveness from the replication connection, not file ages" {
  # Hours without writes: every WAL file is old, the receiver still streams, the slot holds nothing.
  touch -d '-3 hours' "${PGB_ARTIFACTS}"/wal/svc_b/*
  run state_of wal_receiver:svc_b
  assert_output OK
  run state_of wal_retained:svc_b
  assert_output OK
}

@test "the USB drive absent: WARNING at once, still WARNING after 9 days, CRITICAL after 16, never OK; plugged back: OK" {
  http_recorder_reset
  seq_reset
  check_run
  pgb_detach_keep "${PGB_EXT_MOUNT}" "${PGB_T}/usb-unplugged"
  pgb_nightly nousb
  assert_equal "${PGB_BACKUP_RC}" 0
  assert_equal "${PGB_BORG_RC}" 1
  check_run
  assert_equal "$(metric_value pgb_borg_repo_present 'repo="external"')" 0
  check_run "$(date -u -d '+9 days' '+%Y-%m-%d %H:%M:%S')"
  check_run "$(date -u -d '+16 days' '+%Y-%m-%d %H:%M:%S')"
  assert_equal "$(seq_of repo:external)" 'OK WARNING WARNING CRITICAL'
  run webhook_bodies
  assert_output --partial 'WARNING repo:external (was OK): drive not mounted at'
  assert_output --partial 'CRITICAL repo:external (was WARNING): drive not mounted at'
  # Plugged back in: the next night archives there again and the check recovers.
  pgb_reattach "${PGB_EXT_MOUNT}" "${PGB_T}/usb-unplugged"
  full_night
  check_run
  assert_equal "$(seq_of repo:external)" 'OK WARNING WARNING CRITICAL OK'
}

@test "the backup disk nearly full: disk:primary CRITICAL, then OK when space is freed" {
  local avail t0
  seq_reset
  check_run
  avail="$(df -B1 --output=avail "${PGB_BACKUP_MOUNT}" | tail -n 1 | tr -d ' ')"
  t0="${SECONDS}"
  fallocate -l "$((avail - 16 * 1048576))" "${PGB_BACKUP_MOUNT}/ballast"
  check_run
  printf '# backup disk nearly full: alert %s s after the disk filled (one checker run)\n' "$((SECONDS - t0))" >&3
  rm -f "${PGB_BACKUP_MOUNT}/ballast"
  check_run
  assert_equal "$(seq_of disk:primary)" 'OK CRITICAL OK'
  run webhook_bodies
  assert_output --partial 'CRITICAL disk:primary (was OK)'
}

@test "the weekly borg check failing: borg_check:primary CRITICAL, named, then OK" {
  local t0
  seq_reset
  check_run
  # A wrong passphrase: borg check fails for real (rc 2), the repository itself stays intact.
  cp -p "${PGB_PASSPHRASE_FILE}" "${PGB_T}/passphrase.keep"
  (umask 077 && printf 'BORG_PASSPHRASE=wrong-%s\n' "${RANDOM}" >"${PGB_PASSPHRASE_FILE}")
  t0="${SECONDS}"
  pgb_run_script borgcheck-bad borg_pg_artifacts.sh check all
  assert_failure
  check_run
  printf '# borg check failing: alert %s s after the check started (one checker run after it)\n' "$((SECONDS - t0))" >&3
  mv -f "${PGB_T}/passphrase.keep" "${PGB_PASSPHRASE_FILE}"
  pgb_run_script borgcheck-good borg_pg_artifacts.sh check all
  assert_success
  check_run
  assert_equal "$(seq_of borg_check:primary)" 'OK CRITICAL OK'
  run webhook_bodies
  assert_output --partial 'CRITICAL borg_check:primary (was OK): last borg check FAILED'
}

@test "the restore drill failing: drill CRITICAL, named, then OK" {
  local newest t0
  seq_reset
  check_run
  # The newest raw base backup of svc_a loses its pg_control: the restored copy cannot start.
  newest="$(pgb_promoted svc_a | tail -n 1)"
  mv "${PGB_BASE_DIR}/${newest}/global/pg_control" "${PGB_T}/pg_control.keep"
  t0="${SECONDS}"
  pgb_run_script drill-bad pgb-restore.sh drill --from raw
  assert_failure
  check_run
  printf '# drill failing: alert %s s after the drill started (one checker run after it)\n' "$((SECONDS - t0))" >&3
  mv "${PGB_T}/pg_control.keep" "${PGB_BASE_DIR}/${newest}/global/pg_control"
  pgb_run_script drill-good pgb-restore.sh drill --from raw
  assert_success
  check_run
  assert_equal "$(seq_of drill:svc_a)" 'OK CRITICAL OK'
  assert_equal "$(seq_of drill:svc_b)" 'OK OK OK'
  run webhook_bodies
  assert_output --partial 'CRITICAL drill:svc_a (was OK): last restore drill FAILED'
}

@test "the endpoint down for three runs, then back: every message arrives once, in order" {
  local avail
  http_recorder_reset
  seq_reset
  check_run
  http_recorder_fail down
  stop_receiver svc_a
  check_run # message 1: wal_receiver CRITICAL
  avail="$(df -B1 --output=avail "${PGB_BACKUP_MOUNT}" | tail -n 1 | tr -d ' ')"
  fallocate -l "$((avail - 16 * 1048576))" "${PGB_BACKUP_MOUNT}/ballast"
  check_run # message 2: disk CRITICAL
  start_receiver svc_a
  pgb_wait_for "the slot of svc_a to catch up" 120 - slot_caught_up svc_a
  check_run # message 3: wal_receiver RECOVERED
  assert_equal "$(webhook_titles | wc -l)" 0
  (( $(http_recorder_requests 'select(.path == "/ntfy/pgb-test" and .refused)' | wc -l) >= 3 ))
  assert_equal "$(metric_value pgb_notify_outbox_messages '')" 3
  http_recorder_fail up
  rm -f "${PGB_BACKUP_MOUNT}/ballast"
  check_run # delivers 1-3 from the outbox, then message 4: disk RECOVERED
  run webhook_bodies
  assert_equal "$(webhook_titles | wc -l)" 4
  run webhook_titles
  assert_line --index 0 'mon: CRITICAL (1 change(s))'
  assert_line --index 1 'mon: CRITICAL (1 change(s))'
  assert_line --index 2 'mon: RECOVERED (1 change(s))'
  assert_line --index 3 'mon: RECOVERED (1 change(s))'
  run webhook_bodies
  assert_equal "$(grep -c '^CRITICAL wal_receiver:svc_a' <<<"${output}")" 1
  assert_equal "$(grep -c '^CRITICAL disk:primary' <<<"${output}")" 1
  assert_equal "$(grep -c '^RECOVERED wal_receiver:svc_a' <<<"${output}")" 1
  assert_equal "$(grep -c '^RECOVERED disk:primary' <<<"${output}")" 1
  # In the order the faults happened.
  assert_equal "$(grep -oE '^(CRITICAL|RECOVERED) [a-z_]+' <<<"${output}" | tr '\n' ' ')" \
    'CRITICAL wal_receiver CRITICAL disk RECOVERED wal_receiver RECOVERED disk '
  assert_equal "$(metric_value pgb_notify_outbox_messages '')" 0
  assert_equal "$(find "${PGB_MONITOR_STATE_DIR}/outbox" -mindepth 1 | wc -l)" 0
}

@test "no nightly for a day (the timer stopped): the job goes stale and is reported; the dead man's switch still pings" {
  http_recorder_reset
  seq_reset
  check_run
  check_run "$(date -u -d '+27 hours' '+%Y-%m-%d %H:%M:%S')"
  check_run "$(date -u -d '+51 hours' '+%Y-%m-%d %H:%M:%S')"
  assert_equal "$(seq_of basebackup:svc_a)" 'OK WARNING CRITICAL'
  assert_equal "$(seq_of repo:primary)" 'OK WARNING CRITICAL'
  run webhook_bodies
  assert_output --partial 'WARNING basebackup:svc_a (was OK): newest verified base backup 1d'
  # Every run pinged, whatever the state.
  assert_equal "$(http_recorder_requests 'select(.path == "/deadman" and (.refused | not))' | wc -l)" 3
}

@test "notification bodies carry journal-like text safely; URLs never reach argv, logs or metrics" {
  local marker="${PGB_T}/pwned" url
  http_recorder_reset
  pgb_script_cmd pgb-notify.sh
  printf '%s\n' "quote \" back\\slash \$(touch ${marker}) \`touch ${marker}\` 'single'" 'line two' |
    "${PGB_CMD[@]}" --send 'title "with" $(quotes)' 4 warning
  assert [ ! -e "${marker}" ]
  run webhook_bodies
  assert_output --partial "quote \" back\\slash \$(touch ${marker}) \`touch ${marker}\` 'single'"
  assert_output --partial 'line two'
  for url in "${HTTP_RECORDER_URL}/ntfy" "${HTTP_RECORDER_URL}/hc" "${HTTP_RECORDER_URL}/deadman"; do
    run grep -rlF "${url}" "${PGB_TEXTFILE}" "${PGB_T}/logs" "${PGB_T}/out"
    assert_failure
  done
}

@test "a URL file readable by others is refused like every secret file, and its message waits" {
  http_recorder_reset
  chmod 0644 "${PGB_T}/secrets/webhook.url"
  pgb_script_cmd pgb-notify.sh
  run "${PGB_CMD[@]}" --send 'refused channel' 3 warning <<<'body'
  assert_failure
  assert_output --partial "secret file is readable or writable by others"
  assert_equal "$(webhook_titles | wc -l)" 0
  chmod 0600 "${PGB_T}/secrets/webhook.url"
  run "${PGB_CMD[@]}" --flush
  assert_success
  run webhook_titles
  assert_output 'refused channel'
}
