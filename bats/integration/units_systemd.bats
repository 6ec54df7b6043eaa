#!/usr/bin/env bats
# The hardened server units, run for real under systemd as PID 1: a systemd-nspawn container
# booted from this machine's own root file system (an overlay whose writes land in a tmpfs, so
# the machine is never changed), with a private network (loopback only), a real PostgreSQL
# cluster inside it, the generated bundle installed by its own install.sh, real Borg
# repositories, a tmpfs as the backup disk and, later, another tmpfs as the external drive.
# Proves: the sandboxed units do their work; a missing external drive fails only the external
# unit, loudly; install.sh's live path (user, visudo -c, daemon-reload, enable --now) works; the dev
# machine's sandboxed pull unit pulls through the hardened ssh path (an sshd in the container), and
# its drill unit restores and verifies that pulled copy.

PG_PORT=55450
SSH_PORT=55451
# The HTTP recorder standing in for the webhook and Healthchecks, inside the container.
REC_PORT=55452

setup_file() {
  load helpers/common
  load helpers/mounts
  load helpers/nspawn
  pgb_require_root
  pgb_ensure_pkg systemd-nspawn systemd-container
  local cmd
  for cmd in nsenter systemd-id128 pg_verifybackup borg; do
    command -v "${cmd}" >/dev/null || [[ -x "/usr/lib/postgresql/15/bin/${cmd}" ]] ||
      { printf 'missing command: %s\n' "${cmd}" >&2; return 1; }
  done
  pgb_scratch_init
  export CT_ROOT="${PGB_T}/ct"
  export BACKUP_DISK="${PGB_T}/backup"
  export SRV="nspawn-srv"
  export GEN="${PGB_T}/gen"
  export DEV="nspawn-dev"
  mkdir -p "${PGB_T}/keys"
  ssh-keygen -q -t ed25519 -N '' -C "${DEV}" -f "${PGB_T}/keys/pull"
  ssh-keygen -q -t ed25519 -N '' -C host -f "${PGB_T}/keys/host"

  write_config "${PGB_T}/pgb.config.yaml"
  pgb_generate "${PGB_T}/pgb.config.yaml" "${GEN}" >/dev/null

  # The container's root: this machine's / read-only below, its changes in a tmpfs above.
  ct_make_root
  mkdir -p "${CT_ROOT}/media/usb"
  # The backup disk: a tmpfs of its own, bound into the container at /mnt/backup.
  pgb_mount_tmpfs "${BACKUP_DISK}" 512m

  mkdir -p "${CT_ROOT}/root/pgb-bundle" "${CT_ROOT}/root/pgb-dev-bundle"
  cp -a "${GEN}/${SRV}/." "${CT_ROOT}/root/pgb-bundle/"
  cp -a "${GEN}/${DEV}/." "${CT_ROOT}/root/pgb-dev-bundle/"
  ct_boot --bind="${BACKUP_DISK}:/mnt/backup"

  start_postgres
}

teardown_file() {
  load helpers/common
  load helpers/mounts
  load helpers/nspawn
  [[ -n "${PGB_T:-}" ]] || return 0
  ct_teardown
  pgb_teardown_all
}

setup() {
  load helpers/common
  load helpers/nspawn
  pgb_load_bats_libs
  ct_attach
}

write_config() {
  cat >"$1" <<EOF
version: 1
servers:
  - name: ${SRV}
    host: 127.0.0.1
    ssh: { port: 55451, user: pgbnspull }
    schedule: "02:00"
    repos:
      external: { mount: /media/usb, path: /media/usb/borg, warnFreeBytes: 1048576, reserveBytes: 1048576 }
    borg: { lockWait: 30 }
    replication: { allowedSubnet: 127.0.0.1/32 }
    services:
      - { name: svc_a, host: 127.0.0.1, port: ${PG_PORT}, pgVersion: 15, wal: false }
    configPaths: [/etc/hostname, /etc/ssh/sshd_config]
    monitoring:
      notify:
        webhookUrlFile: /etc/pgb-gen/monitor/webhook.url
        healthchecksUrlFile: /etc/pgb-gen/monitor/healthchecks.url
        deadManUrlFile: /etc/pgb-gen/monitor/deadman.url
        email: pgbmail@localhost
devs:
  - name: ${DEV}
    pullFrom: [${SRV}]
    address: 127.0.0.1
    publicKey: "$(cat "${PGB_T}/keys/pull.pub")"
EOF
}

# borg inside the container, in directory DIR, the passphrase in its environment (never argv).
borg_ct() {
  local dir="$1" pass
  shift
  pass="$(secret_of borg)"
  BORG_PASSPHRASE="${pass}" BORG_BASE_DIR=/var/lib/pgb-gen/borg \
    in_ct env --chdir="${dir}" borg "$@"
}

# A PostgreSQL 15 cluster inside the container, run by its systemd as a transient unit.
start_postgres() {
  local data=/var/lib/pgbtest/svc_a
  in_ct install -d -o postgres -g postgres -m 0700 /var/lib/pgbtest
  in_ct runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "${data}" -U postgres \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"${PGB_T}/logs/initdb.log" 2>&1
  in_ct runuser -u postgres -- sh -c "cat >'${data}/pg_hba.conf'" <<'EOF'
local   all           all                         trust
host    all           postgres     127.0.0.1/32   trust
host    replication   repl_backup  127.0.0.1/32   scram-sha-256
EOF
  CT_DIAG_UNITS=(pgbtest-pg.service)
  in_ct systemd-run --unit=pgbtest-pg -p User=postgres -p RuntimeDirectory=pgbtest-pg \
    /usr/lib/postgresql/15/bin/postgres -D "${data}" -p "${PG_PORT}" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories=/run/pgbtest-pg -c max_wal_senders=4 ||
    { ct_diagnose >&2; return 1; }
  pgb_wait_for "PostgreSQL in the container (unit pgbtest-pg) to accept connections on port ${PG_PORT}" 180 \
    ct_diagnose ct_postgres_settled
  ct_postgres_ready || {
    printf 'the unit pgbtest-pg failed before PostgreSQL accepted connections\n' >&2
    ct_diagnose >&2
    return 1
  }
  in_ct /usr/lib/postgresql/15/bin/psql -X -q -h 127.0.0.1 -p "${PG_PORT}" -U postgres \
    -c 'CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g'
}

# The transient PostgreSQL unit answers over TCP. pg_isready exits 2 (no response) while it starts.
ct_postgres_ready() {
  in_ct /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -p "${PG_PORT}"
}

# It answers, or its unit failed outright (then waiting longer is pointless).
ct_postgres_settled() {
  ct_postgres_ready || [[ "$(in_ct systemctl is-failed pgbtest-pg.service 2>/dev/null)" == failed ]]
}

wait_for_jobs() {
  CT_DIAG_UNITS=(pg-backup-all.service pgb-borg-primary.service pgb-borg-external.service)
  pgb_wait_for "the container's systemd jobs (the nightly and its Borg units) to finish" 600 ct_diagnose ct_no_jobs
}

secret_of() {
  case "$1" in
    borg) sed -n 's/^BORG_PASSPHRASE=//p' "${CT_ROOT}/etc/borg/pg-borg.env" ;;
    repl) head -n 1 "${CT_ROOT}/etc/pg_backup/repl_password" ;;
  esac
}

@test "install.sh on a live systemd: places the bundle, creates the pull user, enables the timer" {
  run in_ct /root/pgb-bundle/install.sh
  assert_success
  assert_output --partial 'systemctl daemon-reload'
  assert_output --partial 'systemctl enable --now pg-backup-all.timer'
  assert_output --partial 'create the pull user pgbnspull'
  run in_ct systemctl is-enabled pg-backup-all.timer
  assert_output enabled
  run in_ct systemctl is-active pg-backup-all.timer
  assert_output active
  run in_ct getent passwd pgbnspull
  assert_output --regexp ':/bin/sh$'
  run in_ct visudo -c
  assert_success
  run in_ct sudo -n -l -U pgbnspull
  assert_output --partial "(root) NOPASSWD: /usr/bin/rsync --server --daemon --config\\=/etc/pgb-gen/rsyncd-${SRV}.conf ."
  # The daemon config the forced command names, placed root-owned 0644 from MANIFEST.
  assert_equal "$(stat -c '%U %G %a' "${CT_ROOT}/etc/pgb-gen/rsyncd-${SRV}.conf")" 'root root 644'
  # The second run finds nothing to do, systemd included.
  run in_ct /root/pgb-bundle/install.sh
  assert_success
  assert_output --partial 'nothing to change'
}

@test "the filled-in secrets, the replication role and the repositories (the operator's steps)" {
  local pass
  pass="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf 'BORG_PASSPHRASE=%s\n' "${pass}" >"${CT_ROOT}/etc/borg/pg-borg.env"
  head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${CT_ROOT}/etc/pg_backup/repl_password"
  printf '\n' >>"${CT_ROOT}/etc/pg_backup/repl_password"
  run in_ct /root/pgb-bundle/snippets/apply-replication-role.sh --via-tcp
  assert_success
  run in_ct /usr/local/sbin/pgb_repo_init.sh
  assert_success
  assert_output --partial 'external drive not mounted at /media/usb'
  assert [ -f "${BACKUP_DISK}/borg/config" ]
}

@test "the timer starts the backup; base backup and primary archive succeed while the external drive is missing" {
  run in_ct systemctl list-timers --all --no-pager pg-backup-all.timer
  assert_output --partial 'pg-backup-all.service'
  run in_ct systemctl start pg-backup-all.service
  assert_success
  wait_for_jobs
  assert_equal "$(unit_result pg-backup-all.service)" 'success 0'
  assert_equal "$(unit_result pgb-borg-primary.service)" 'success 0'
  # The external step alone failed, loudly, with the reason in its journal.
  assert_equal "$(unit_result pgb-borg-external.service)" 'exit-code 1'
  run in_ct journalctl -u pgb-borg-external.service --no-pager -o cat
  assert_output --partial 'external drive not mounted at /media/usb; external copy NOT made'
  # A verified base backup landed on the backup disk, and it verifies here too.
  local backup
  backup="$(find "${BACKUP_DISK}/postgres/basebackups" -mindepth 1 -maxdepth 1 -name 'svc_a_basebackup_*' | head -n 1)"
  assert [ -n "${backup}" ]
  run /usr/lib/postgresql/15/bin/pg_verifybackup -q "${backup}"
  assert_success
  assert [ -f "${BACKUP_DISK}/config/etc/ssh/sshd_config" ]
  assert [ -f "${BACKUP_DISK}/postgres/.pgb-sentinel" ]
}

@test "the primary archive holds the base backup byte for byte" {
  local archive rel
  run borg_ct / list --short /mnt/backup/borg
  assert_success
  assert_equal "${#lines[@]}" 1
  archive="${lines[0]}"
  [[ "${archive}" == "${SRV}-pg-artifacts-"* ]]
  in_ct mkdir -p /root/extract
  borg_ct /root/extract extract "/mnt/backup/borg::${archive}"
  rel="$(find "${BACKUP_DISK}/postgres/basebackups" -mindepth 1 -maxdepth 1 -name 'svc_a_basebackup_*' -printf '%f\n' | head -n 1)"
  run diff -r "${BACKUP_DISK}/postgres/basebackups/${rel}" "${CT_ROOT}/root/extract/mnt/backup/postgres/basebackups/${rel}"
  assert_success
}

@test "with the drive plugged in, the external unit archives too; the sandbox is in force" {
  in_ct mount -t tmpfs -o size=256m,nosuid,nodev pgbtest-usb /media/usb
  run in_ct /usr/local/sbin/pgb_repo_init.sh
  assert_success
  run in_ct systemctl start pgb-borg-external.service
  assert_success
  assert_equal "$(unit_result pgb-borg-external.service)" 'success 0'
  run borg_ct / list --short /media/usb/borg
  assert_success
  assert_equal "${#lines[@]}" 1
  # systemd's own view of the loaded units (online, not --offline): at most 1.5 each.
  local unit score
  for unit in pg-backup-all.service pgb-borg-primary.service pgb-borg-external.service; do
    score="$(in_ct systemd-analyze security --no-pager "${unit}" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')"
    printf '# %s online exposure %s\n' "${unit}" "${score}" >&3
    (( 10#${score/./} <= 15 )) || fail "${unit} scores ${score} in the running system"
  done
  run in_ct systemctl show -p PrivateUsers -p ProtectSystem -p CapabilityBoundingSet --value pg-backup-all.service
  assert_line 'yes'
  assert_line 'strict'
  # The IP allow list is enforced in this system (cgroup BPF), not silently ignored: the
  # backup unit's own allow list reaches PostgreSQL, a deny-all one does not.
  run in_ct systemd-run --quiet --wait --pipe -p IPAddressDeny=any -p IPAddressAllow=127.0.0.1 \
    /usr/lib/postgresql/15/bin/pg_isready -t 3 -h 127.0.0.1 -p "${PG_PORT}"
  assert_success
  run in_ct systemd-run --quiet --wait --pipe -p IPAddressDeny=any \
    /usr/lib/postgresql/15/bin/pg_isready -t 3 -h 127.0.0.1 -p "${PG_PORT}"
  assert_failure
  run in_ct journalctl --no-pager -o cat -u pg-backup-all.service -u pgb-borg-primary.service
  refute_output --partial 'does not support BPF'
}

@test "the weekly check unit checks both repositories inside its sandbox; its timer is enabled" {
  run in_ct systemctl is-enabled pgb-borg-check.timer
  assert_output 'enabled'
  run in_ct systemctl start pgb-borg-check.service
  assert_success
  assert_equal "$(unit_result pgb-borg-check.service)" 'success 0'
  run in_ct journalctl -u pgb-borg-check.service --no-pager -o cat
  assert_output --partial 'checked /mnt/backup/borg'
  assert_output --partial 'checked /media/usb/borg'
  assert_output --partial 'borg check complete (all)'
}

# ct_recorded JQ_FILTER: the recorder in the container logged a request the filter selects.
ct_recorded() {
  [[ -n "$(jq -c "select($1)" "${CT_ROOT}/var/lib/pgbtest/http/requests.jsonl" 2>/dev/null)" ]]
}

# ct_mail_has TEXT: the container's local mailbox of pgbmail holds TEXT.
ct_mail_has() {
  grep -qF -- "$1" "${CT_ROOT}/var/mail/pgbmail" 2>/dev/null
}

ct_mail_diagnose() {
  pgb_tail_file "${CT_ROOT}/var/log/exim4/mainlog" 20
  pgb_tail_file "${CT_ROOT}/var/log/exim4/paniclog" 20
  ls -la "${CT_ROOT}/var/mail" "${CT_ROOT}/var/spool/exim4/input" 2>&1
}

# systemd's invocation id of a unit's last run, as the UUID Healthchecks takes for rid.
ct_rid_of() {
  local id
  id="$(in_ct systemctl show -p InvocationID --value "$1")"
  printf '%s-%s-%s-%s-%s' "${id:0:8}" "${id:8:4}" "${id:12:4}" "${id:16:4}" "${id:20:12}"
}

@test "OnFailure= and OnSuccess= fire under systemd as PID 1: webhook, Healthchecks and e-mail are told; the checker pings the dead man's switch" {
  local rec=/var/lib/pgbtest/http rid unit score t0
  pgb_ensure_pkg jq jq
  # The operator's steps: the channels' URL files (install.sh left placeholders) and a mailbox.
  in_ct install -d -m 0700 "${rec}"
  install -m 0644 "${PGB_HELPERS_DIR}/http_recorder.py" "${CT_ROOT}/var/lib/pgbtest/http_recorder.py"
  printf 0 >"${CT_ROOT}${rec}/fail"
  CT_DIAG_UNITS=(pgbtest-http.service)
  in_ct systemd-run --quiet --unit=pgbtest-http /usr/bin/python3 /var/lib/pgbtest/http_recorder.py \
    "${REC_PORT}" "${rec}/requests.jsonl" "${rec}/fail"
  pgb_wait_for "the container's HTTP recorder (unit pgbtest-http) on port ${REC_PORT}" 120 ct_diagnose \
    in_ct bash -c "exec 3<>/dev/tcp/127.0.0.1/${REC_PORT}"
  # install.sh created them empty, root-only.
  assert_equal "$(stat -c '%U %a %s' "${CT_ROOT}/etc/pgb-gen/monitor/webhook.url")" 'root 600 0'
  printf 'http://127.0.0.1:%s/ntfy/pgb-test\n' "${REC_PORT}" >"${CT_ROOT}/etc/pgb-gen/monitor/webhook.url"
  printf 'http://127.0.0.1:%s/hc/ping-key\n' "${REC_PORT}" >"${CT_ROOT}/etc/pgb-gen/monitor/healthchecks.url"
  printf 'http://127.0.0.1:%s/deadman\n' "${REC_PORT}" >"${CT_ROOT}/etc/pgb-gen/monitor/deadman.url"
  in_ct useradd --system --create-home --home-dir /home/pgbmail --shell /usr/sbin/nologin pgbmail

  # A real failure: the drive is unplugged, the external unit fails, systemd starts its notifier.
  in_ct umount /media/usb
  t0="${SECONDS}"
  run in_ct systemctl start pgb-borg-external.service
  assert_failure
  CT_DIAG_UNITS=(pgb-borg-external.service pgb-notify@pgb-borg-external.service.service)
  pgb_wait_for "pgb-notify@ to post the failure to the webhook" 120 ct_diagnose \
    ct_recorded '.path == "/ntfy/pgb-test" and (.title | startswith("FAILED: pgb-borg-external.service"))'
  printf '# OnFailure=: the webhook had the failure %s s after the unit was started\n' "$((SECONDS - t0))" >&3
  run jq -r 'select(.path == "/ntfy/pgb-test" and (.title | startswith("FAILED"))) | .title, .priority, .body' \
    "${CT_ROOT}${rec}/requests.jsonl"
  assert_line --index 0 "FAILED: pgb-borg-external.service on ${SRV} (exit-code)"
  assert_line --index 1 5
  assert_output --partial 'exit status: 1 (exited)'
  assert_output --partial 'external drive not mounted at /media/usb; external copy NOT made'
  # Healthchecks: the job's check, failed with its exit status, paired by systemd's invocation id.
  rid="$(ct_rid_of pgb-borg-external.service)"
  pgb_wait_for "pgb-notify@ to ping Healthchecks for the failure" 120 ct_diagnose \
    ct_recorded ".path == \"/hc/ping-key/pgb-borg-external/1?create=1&rid=${rid}\""
  pgb_wait_for "the failure mail in the container's mailbox" 120 ct_mail_diagnose \
    ct_mail_has "Subject: [pgb 5] FAILED: pgb-borg-external.service on ${SRV} (exit-code)"
  assert_equal "$(unit_result pgb-notify@pgb-borg-external.service.service)" 'success 0'

  # A success: OnSuccess= pings the job's check, and nobody is woken for it.
  run in_ct systemctl start pgb-borg-primary.service
  assert_success
  rid="$(ct_rid_of pgb-borg-primary.service)"
  pgb_wait_for "pgb-notify@ to ping Healthchecks for the success" 120 ct_diagnose \
    ct_recorded ".path == \"/hc/ping-key/pgb-borg-primary?create=1&rid=${rid}\""
  run jq -r 'select(.path == "/ntfy/pgb-test") | .title' "${CT_ROOT}${rec}/requests.jsonl"
  refute_output --partial 'pgb-borg-primary'
  # Its start pinged the check too (Wants= pulls the notifier in as the job starts).
  pgb_wait_for "pgb-notify@ to ping Healthchecks for the start" 120 ct_diagnose \
    ct_recorded '.path == "/hc/ping-key/pgb-borg-primary/start?create=1"'
  # The checker in its sandbox: it reads the backups, asks PostgreSQL over the replication
  # connection, writes its metrics, and pings the dead man's switch with its summary.
  CT_DIAG_UNITS=(pgb-check.service)
  run in_ct systemctl start pgb-check.service
  assert_success
  assert_equal "$(unit_result pgb-check.service)" 'success 0'
  run jq -r 'select(.path == "/deadman") | .body' "${CT_ROOT}${rec}/requests.jsonl"
  assert_output --regexp "^PGB ${SRV} (OK|WARNING|CRITICAL) - "
  # A fresh base backup is OK; the drive this test unplugged is stale (WARNING), never OK.
  run grep '^pgb_check_state' "${CT_ROOT}/var/lib/prometheus/node-exporter/pgb_status.prom"
  assert_line 'pgb_check_state{check="basebackup:svc_a"} 0'
  assert_line 'pgb_check_state{check="repo:external"} 1'
  # The notifier and the checker are hardened like the jobs, in the running system.
  for unit in pgb-notify@pgb-borg-external.service.service pgb-check.service; do
    score="$(in_ct systemd-analyze security --no-pager "${unit}" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')"
    printf '# %s online exposure %s\n' "${unit}" "${score}" >&3
    (( 10#${score/./} <= 15 )) || fail "${unit} scores ${score} in the running system"
  done
}

@test "the dev machine's sandboxed pull unit pulls the artifacts through the hardened ssh path" {
  # Before the pull key exists, install enables no timer and names the next steps.
  run in_ct /root/pgb-dev-bundle/install.sh
  assert_success
  assert_output --partial 'not starting pull-server-backups.timer: /etc/backup/ssh/backup_servers_ed25519 is still empty'
  assert_output --partial 'not starting pull-server-wal.timer: /etc/backup/ssh/backup_servers_ed25519 is still empty'
  assert_output --partial 'next 1: sudo /usr/local/sbin/pgb_pull_keygen.sh'
  run in_ct systemctl is-enabled pull-server-backups.timer
  assert_failure
  # The operator's steps: the pull key and the pinned host key on the dev side, the generated
  # authorized_keys line on the server side, and an sshd.
  in_ct install -d -m 0700 /etc/backup/ssh
  install -m 0600 "${PGB_T}/keys/pull" "${CT_ROOT}/etc/backup/ssh/backup_servers_ed25519"
  printf '[127.0.0.1]:%s %s\n' "${SSH_PORT}" "$(cut -d' ' -f1,2 "${PGB_T}/keys/host.pub")" \
    >"${CT_ROOT}/etc/backup/ssh/known_hosts"
  run in_ct /root/pgb-dev-bundle/install.sh
  assert_success
  assert_output --partial 'systemctl enable --now pull-server-backups.timer'
  assert_output --partial 'systemctl enable --now pull-server-wal.timer'
  in_ct install -d -m 0755 -o root -g root /home/pgbnspull/.ssh
  grep -v -e '^#' -e '^$' "${CT_ROOT}/root/pgb-bundle/snippets/authorized_keys" \
    >"${CT_ROOT}/home/pgbnspull/.ssh/authorized_keys"
  in_ct install -d -m 0700 /etc/pgbtest
  install -m 0600 "${PGB_T}/keys/host" "${CT_ROOT}/etc/pgbtest/host_key"
  printf '%s\n' "Port ${SSH_PORT}" 'ListenAddress 127.0.0.1' 'HostKey /etc/pgbtest/host_key' 'UsePAM no' \
    'PasswordAuthentication no' 'KbdInteractiveAuthentication no' 'AllowUsers pgbnspull' \
    'PidFile /run/pgbtest-sshd.pid' >"${CT_ROOT}/etc/pgbtest/sshd_config"
  in_ct install -d -m 0755 /run/sshd
  in_ct systemd-run --quiet --unit=pgbtest-sshd /usr/sbin/sshd -D -f /etc/pgbtest/sshd_config
  local score
  CT_DIAG_UNITS=(pgbtest-sshd.service)
  pgb_wait_for "the container's sshd (unit pgbtest-sshd) to listen on port ${SSH_PORT}" 120 ct_diagnose \
    in_ct bash -c "exec 3<>/dev/tcp/127.0.0.1/${SSH_PORT}"
  run in_ct systemctl start pull-server-backups.service
  in_ct journalctl -u pull-server-backups.service --no-pager -o cat | sed 's/^/# /' >&3 || true
  assert_success
  assert_equal "$(unit_result pull-server-backups.service)" 'success 0'
  # The mirror is the server's tree; the dev's own store holds each base backup, verified, as served.
  run diff -r --no-dereference "${BACKUP_DISK}/postgres" "${CT_ROOT}/mnt/upload/.pgb-incoming/${SRV}"
  assert_success
  run diff -r --no-dereference "${BACKUP_DISK}/postgres/basebackups" "${CT_ROOT}/mnt/upload/${SRV}/postgres/basebackups"
  assert_success
  run diff -r --no-dereference "${BACKUP_DISK}/config" "${CT_ROOT}/mnt/upload/${SRV}/config"
  assert_success
  # The two trees and nothing else of the backup disk: the Borg repository beside them stays there.
  assert [ -f "${BACKUP_DISK}/borg/config" ]
  assert_equal "$(ls -A "${CT_ROOT}/mnt/upload/${SRV}")" "$(printf 'config\npostgres')"
  run in_ct rsync --list-only -e "ssh -p ${SSH_PORT} -i /etc/backup/ssh/backup_servers_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=/etc/backup/ssh/known_hosts" \
    pgbnspull@127.0.0.1::artifacts/../borg/config
  assert_failure
  run in_ct rsync --list-only -e "ssh -p ${SSH_PORT} -i /etc/backup/ssh/backup_servers_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=/etc/backup/ssh/known_hosts" \
    pgbnspull@127.0.0.1::borg/
  assert_failure
  score="$(in_ct systemd-analyze security --no-pager pull-server-backups.service | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')"
  printf '# pull-server-backups.service online exposure %s\n' "${score}" >&3
  (( 10#${score/./} <= 15 ))
  # The WAL pull, under its own unit: the same sandbox, only the WAL.
  run in_ct systemctl start pull-server-wal.service
  in_ct journalctl -u pull-server-wal.service --no-pager -o cat | sed 's/^/# /' >&3 || true
  assert_success
  assert_equal "$(unit_result pull-server-wal.service)" 'success 0'
  run in_ct journalctl -u pull-server-wal.service --no-pager -o cat
  assert_output --partial "[${SRV}] WAL pulled; newest here: none"
  score="$(in_ct systemd-analyze security --no-pager pull-server-wal.service | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')"
  printf '# pull-server-wal.service online exposure %s\n' "${score}" >&3
  (( 10#${score/./} <= 15 ))
}

@test "the dev's drill unit restores the pulled copy inside its sandbox, verifies it and writes its metrics" {
  local prom="${CT_ROOT}/var/lib/prometheus/node-exporter/pgb_restore_drill.prom" score
  # install.sh enabled its timer with the pull timers once the pull key existed.
  run in_ct systemctl is-enabled pgb-restore-drill.timer
  assert_output enabled
  run in_ct systemctl start pgb-restore-drill.service
  in_ct journalctl -u pgb-restore-drill.service --no-pager -o cat | sed 's/^/# /' >&3 || true
  assert_success
  assert_equal "$(unit_result pgb-restore-drill.service)" 'success 0'
  run in_ct journalctl -u pgb-restore-drill.service --no-pager -o cat
  assert_output --partial "from /mnt/upload/${SRV}/postgres/basebackups into /var/tmp/pgb-drill."
  assert_output --regexp '\[svc_a\] drill passed: from raw in [0-9]+ s; recovered to [0-9-]+ [0-9:]+\+00, [0-9]+ s before the drill began'
  assert_output --partial 'restore drill: all 1 service(s) restored, recovered and answered'
  # Nothing the sandbox denied (sed -i could not give a postgres-owned file its mode back).
  refute_output --partial 'not permitted'
  run grep -E "^pgb_drill_last_exit_status\{service=\"svc_a\",server=\"${SRV}\"\} 0$" "${prom}"
  assert_success
  run grep -E "^pgb_drill_last_recovery_lag_seconds\{service=\"svc_a\",server=\"${SRV}\"\} [0-9]+$" "${prom}"
  assert_success
  assert_equal "$(stat -c %a "${prom}")" 644
  # The scratch copy lived in the unit's private /var/tmp, which went with the run.
  assert_equal "$(find "${CT_ROOT}/var/tmp" "${CT_ROOT}/tmp" -maxdepth 1 -name 'systemd-private-*-pgb-restore-drill.service-*' | wc -l)" 0
  score="$(in_ct systemd-analyze security --no-pager pgb-restore-drill.service | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')"
  printf '# pgb-restore-drill.service (dev) online exposure %s\n' "${score}" >&3
  (( 10#${score/./} <= 15 ))
}

# The store of the dev machine in the container, by content (names, sizes, sha256).
ct_store_sums() {
  (cd "${CT_ROOT}/mnt/upload/${SRV}/postgres/basebackups" && find . -type f -printf '%p %s\n' | sort &&
    find . -type f -exec sha256sum {} + | sort)
}

@test "the dev's pull unit against a hostile server: no setuid, device or FIFO arrives, a 300 GB sparse file is refused, the kept copy survives" {
  local keys="${CT_ROOT}/home/pgbnspull/.ssh/authorized_keys" evil="${CT_ROOT}/srv/evil" before
  cp -- "${keys}" "${PGB_T}/authorized_keys.generated"
  before="$(ct_store_sums)"
  [[ -n "${before}" ]]
  # The attacker's own daemon as the pull user: no chroot, no sudo, links and specials as they are.
  mkdir -p "${evil}/config/etc"
  cp -a -- "${BACKUP_DISK}/postgres" "${evil}/"
  mkdir -p "${evil}/postgres/wal/svc_a"
  install -m 4755 -o root -g root /bin/true "${evil}/postgres/wal/svc_a/000000010000000000000070"
  mknod "${evil}/postgres/wal/svc_a/000000010000000000000071" b 7 0
  mkfifo "${evil}/postgres/wal/svc_a/000000010000000000000072"
  install -m 6755 -o root -g root /bin/true "${evil}/config/etc/rootshell"
  chmod -R a+rX "${evil}"
  printf '%s\n' 'use chroot = no' 'munge symlinks = no' 'read only = yes' 'numeric ids = yes' \
    '[artifacts]' 'path = /srv/evil/postgres' '[config]' 'path = /srv/evil/config' >"${CT_ROOT}/srv/evil-rsyncd.conf"
  chmod 0644 "${CT_ROOT}/srv/evil-rsyncd.conf"
  printf 'restrict,command="/usr/bin/rsync --server --daemon --config=/srv/evil-rsyncd.conf ." %s\n' \
    "$(cat "${PGB_T}/keys/pull.pub")" >"${keys}"

  run in_ct systemctl start pull-server-backups.service
  in_ct journalctl -u pull-server-backups.service --no-pager -o cat -n 30 | sed 's/^/# /' >&3 || true
  assert_success
  run find "${CT_ROOT}/mnt/upload" \( -perm /7000 -o ! -type f ! -type d -o ! -uid 0 \) -print
  assert_output ''
  assert [ ! -e "${CT_ROOT}/mnt/upload/${SRV}/postgres/wal/svc_a/000000010000000000000071" ]
  assert_equal "$(ct_store_sums)" "${before}"

  truncate -s 300G "${evil}/postgres/wal/svc_a/000000010000000000000080"
  local used
  used="$(du -sB1 "${CT_ROOT}/mnt/upload" | cut -f1)"
  run in_ct systemctl start pull-server-backups.service
  assert_failure
  assert_equal "$(unit_result pull-server-backups.service)" 'exit-code 1'
  run in_ct journalctl -u pull-server-backups.service --no-pager -o cat -n 30
  assert_output --partial "more than maxPullBytes (214748364800); NOT pulling, local copy left untouched"
  (( $(du -sB1 "${CT_ROOT}/mnt/upload" | cut -f1) - used < 1048576 ))
  run find "${CT_ROOT}/mnt/upload" -name .rsync-partial -print
  assert_output ''
  assert_equal "$(ct_store_sums)" "${before}"

  cp -- "${PGB_T}/authorized_keys.generated" "${keys}"
  rm -rf -- "${evil}" "${CT_ROOT}/srv/evil-rsyncd.conf"
}

@test "no secret appears in the journal of the container or on the backup disk's logs" {
  local borg repl
  borg="$(secret_of borg)"
  repl="$(secret_of repl)"
  [[ ${#borg} -ge 16 && ${#repl} -ge 16 ]]
  run in_ct journalctl --no-pager -o cat
  assert_success
  assert_output --partial 'base backup verified and promoted'
  refute_output --partial "${borg}"
  refute_output --partial "${repl}"
  run grep -rlF -e "${borg}" -e "${repl}" "${BACKUP_DISK}/postgres" "${GEN}"
  assert_failure
}

@test "install.sh --uninstall on a live systemd disables the timer and removes the bundle's files" {
  run in_ct /root/pgb-bundle/install.sh --uninstall
  assert_success
  assert_output --partial 'systemctl disable --now pg-backup-all.timer'
  run in_ct systemctl is-enabled pg-backup-all.timer
  assert_failure
  assert [ ! -e "${CT_ROOT}/usr/local/sbin/pg_backup_all.sh" ]
  assert [ ! -e "${CT_ROOT}/etc/sudoers.d/pgb-pull-${SRV}" ]
  assert [ ! -e "${CT_ROOT}/etc/pgb-gen/rsyncd-${SRV}.conf" ]
  assert [ -s "${CT_ROOT}/etc/borg/pg-borg.env" ]
  run in_ct visudo -c
  assert_success
}
