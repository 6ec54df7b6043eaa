#!/usr/bin/env bats
# The server README is executable documentation: its ```sh blocks run here in order and as
# written, on a systemd host (the nspawn rig of helpers/nspawn.bash: systemd as PID 1, loopback
# only), from the packages to the first night, a verified restore and a point-in-time restore.
# Two PostgreSQL 15 clusters stand in for the containers, a 1 GiB tmpfs for the backup disk, a
# 400 MiB tmpfs for the USB drive. A README change that breaks a step fails here.
#
# What the test substitutes, and nothing else (runbook_substitute and setup_file):
#   - `sudo apt update` / `sudo apt install -y PKGS`: no network; the packages must be installed
#     already (`dpkg-query -W PKGS`, so a package the README forgets fails a later step);
#   - `sudoedit FILE`: the secret's value is copied in from /root/pgbtest-secrets/FILE;
#   - the disks: snippets/fstab's `UUID=... ext4` lines become tmpfs lines of the sizes above;
#   - `--target-time '...'`: the moment of the test's own mistake;
#   - the containers' own steps (the ```bash blocks: Docker) are done by setup for the stand-ins:
#     their pg_hba.conf starts with snippets/pg_hba.conf.

SRV=runbook-srv
PORT_A=55901
PORT_B=55902

setup_file() {
  load helpers/common
  load helpers/mounts
  load helpers/nspawn
  load helpers/runbook
  pgb_require_root
  pgb_ensure_pkg systemd-nspawn systemd-container
  pgb_scratch_init
  export CT_ROOT="${PGB_T}/ct"
  export GEN="${PGB_T}/gen"
  export RB="${PGB_T}/runbook"
  write_config "${PGB_T}/pgb.config.yaml" 67108864
  pgb_generate "${PGB_T}/pgb.config.yaml" "${GEN}" >/dev/null
  # The same server with the default reserve (600 MiB), larger than its 400 MiB drive.
  write_config "${PGB_T}/default-reserve.yaml" 629145600
  pgb_generate "${PGB_T}/default-reserve.yaml" "${PGB_T}/gen-default-reserve" >/dev/null

  ct_make_root
  mkdir -p "${CT_ROOT}/root/bundle" "${CT_ROOT}/root/default-reserve"
  cp -a "${GEN}/${SRV}/." "${CT_ROOT}/root/bundle/"
  cp -a "${PGB_T}/gen-default-reserve/${SRV}/root/usr/local/sbin/." "${CT_ROOT}/root/default-reserve/"
  substitute_disks "${CT_ROOT}/root/bundle/snippets/fstab"
  write_secrets
  runbook_extract "${GEN}/${SRV}/README.md" "${RB}" >"${PGB_T}/runbook.count"
  ct_boot
  start_standin svc_a "${PORT_A}"
  start_standin svc_b "${PORT_B}"
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
  load helpers/runbook
  pgb_load_bats_libs
  ct_attach
}

write_config() {
  cat >"$1" <<EOF
version: 1
servers:
  - name: ${SRV}
    host: 127.0.0.1
    ssh: { port: 55903, user: pgbrbpull }
    repos:
      external: { mount: /media/usb, path: /media/usb/borg, warnFreeBytes: 1048576, reserveBytes: $2 }
    borg: { lockWait: 30 }
    replication: { allowedSubnet: 127.0.0.1/32 }
    fstab:
      - { mount: /mnt/backup, uuid: 0b6d1c2e-aaaa-4bbb-8ccc-123456789abc }
      - { mount: /media/usb, uuid: 0b6d1c2e-aaaa-4bbb-8ccc-123456789abd,
          options: [nosuid, nodev, nofail, x-systemd.automount, x-systemd.device-timeout=10s] }
    services:
      - { name: svc_a, port: ${PORT_A}, pgVersion: 15 }
      - { name: svc_b, port: ${PORT_B}, pgVersion: 15 }
    configPaths: [/etc/hostname]
EOF
}

# The disks' devices: each `UUID=... MOUNT ext4 OPTIONS d p` line becomes a tmpfs of the issue's size.
substitute_disks() {
  sed -i -E \
    -e 's#^UUID=[^ ]+ +(/mnt/backup) +ext4 +([^ ]+) .*#pgbtest-backup  \1  tmpfs  \2,size=1g  0  0#' \
    -e 's#^UUID=[^ ]+ +(/media/usb) +ext4 +([^ ]+) .*#pgbtest-usb  \1  tmpfs  \2,size=400m  0  0#' "$1"
  ! grep -q '^UUID=' "$1"
}

# The secrets' values, where the substituted sudoedit lines copy them from.
write_secrets() {
  local dir="${CT_ROOT}/root/pgbtest-secrets"
  install -d -m 0700 "${dir}/etc/borg" "${dir}/etc/pg_backup"
  printf 'BORG_PASSPHRASE=%s\n' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"${dir}/etc/borg/pg-borg.env"
  printf '%s\n' "$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"${dir}/etc/pg_backup/repl_password"
  chmod 0600 "${dir}/etc/borg/pg-borg.env" "${dir}/etc/pg_backup/repl_password"
}

runbook_substitute() {
  local target=""
  [[ ! -f "${PGB_T}/target-time" ]] || target="$(cat "${PGB_T}/target-time")"
  sed -E "${RUNBOOK_APT_OFFLINE[@]}" \
    -e 's#^sudoedit ([^ ]+).*$#cat /root/pgbtest-secrets\1 >\1#' \
    -e "s/--target-time '[^']*'/--target-time '${target}'/"
}

# A PostgreSQL 15 cluster in the container standing in for a service's container: reached on
# 127.0.0.1:PORT, postgres trusted there (the image's superuser password), and a pg_hba.conf that
# starts with snippets/pg_hba.conf as the README's Docker step leaves it.
start_standin() {
  local svc="$1" port="$2" data="/var/lib/pgbtest/$1"
  in_ct install -d -o postgres -g postgres -m 0700 /var/lib/pgbtest
  in_ct runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "${data}" -U postgres \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"${PGB_T}/logs/initdb-${svc}.log" 2>&1
  {
    grep -v -e '^#' -e '^$' "${CT_ROOT}/root/bundle/snippets/pg_hba.conf"
    printf '%s\n' 'local all all trust' 'host all postgres 127.0.0.1/32 trust'
  } | in_ct runuser -u postgres -- sh -c "cat >'${data}/pg_hba.conf'"
  CT_DIAG_UNITS=("pgbtest-${svc}.service")
  in_ct systemd-run --unit="pgbtest-${svc}" -p User=postgres -p "RuntimeDirectory=pgbtest-${svc}" \
    /usr/lib/postgresql/15/bin/postgres -D "${data}" -p "${port}" \
    -c listen_addresses=127.0.0.1 -c "unix_socket_directories=/run/pgbtest-${svc}" >/dev/null ||
    { ct_diagnose >&2; return 1; }
  pgb_wait_for "the stand-in ${svc} to accept connections on ${port}" 180 ct_diagnose \
    in_ct /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -p "${port}"
  sql "${port}" 'CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g'
}

sql() {
  local port="$1"
  shift
  in_ct /usr/lib/postgresql/15/bin/psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${port}" -U postgres -d postgres -c "$@"
}

# The WAL receivers have flushed everything up to LSN (a replication state, not a time).
wal_flushed_to() {
  [[ "$(sql "${PORT_A}" "SELECT count(*) FILTER (WHERE flush_lsn >= '$1') FROM pg_stat_replication WHERE application_name = 'pg_receivewal'")" -ge 1 ]]
}

server_clock_after() {
  [[ "$(sql "${PORT_A}" "SELECT clock_timestamp() > '$1'::timestamptz")" == t ]]
}

# Hooks: what the README's reader does between steps, and what the test checks on the way.
runbook_before_block() {
  local file="$2" target lsn
  grep -q -- '--target-time' "${file}" || return 0
  # The mistake: rows kept before the target time, the table emptied after it.
  sql "${PORT_A}" "CREATE TABLE marks(note text); INSERT INTO marks VALUES ('kept')" || return 1
  target="$(sql "${PORT_A}" "SELECT to_char(date_trunc('second', clock_timestamp() AT TIME ZONE 'UTC') + interval '1 second', 'YYYY-MM-DD HH24:MI:SS') || '+00'")" || return 1
  pgb_wait_for "the stand-in's clock to pass the target time ${target}" 30 - server_clock_after "${target}" || return 1
  sql "${PORT_A}" "DELETE FROM t; INSERT INTO marks VALUES ('lost')" || return 1
  lsn="$(sql "${PORT_A}" 'SELECT pg_current_wal_lsn()')" || return 1
  CT_DIAG_UNITS=(pgb-receivewal@svc_a.service)
  pgb_wait_for "pgb-receivewal@svc_a to flush the WAL up to ${lsn}" 120 ct_diagnose wal_flushed_to "${lsn}" || return 1
  printf '%s\n' "${target}" >"${PGB_T}/target-time"
  runbook_substitute <"${RB}/$1.sh" >"${file}"
}

# Each check returns at once when it fails (a hook runs under `||`, where set -e does not stop).
runbook_after_block() {
  local file="$2" log="${RB}/$1.log"
  if grep -q '^dpkg-query -W ' "${file}"; then
    readme_lists_packages_of "$(sed -n 's/^dpkg-query -W //p' "${file}" | tr '\n' ' ')" || return 1
  fi
  if grep -q '^sudo ./install.sh --dry-run' "${file}"; then
    # Nothing that needs the empty replication password was started; the installer said so.
    grep -q 'not starting pgb-receivewal@svc_a.service: /etc/pg_backup/repl_password is still empty' "${log}" || return 1
    [[ "$(in_ct systemctl is-active pgb-receivewal@svc_a.service)" == inactive ]] || return 1
    [[ "$(in_ct systemctl is-active pg-backup-all.timer)" == active ]] || return 1
    # The config's UUIDs belong to no disk of this machine (the test's disks are tmpfs): said so.
    grep -q 'no disk here has UUID 0b6d1c2e-aaaa-4bbb-8ccc-123456789abc (snippets/fstab, /mnt/backup)' "${log}" || return 1
  fi
  if grep -q '^sudo systemctl start pg-backup-all.service' "${file}"; then
    [[ "$(unit_result pgb-borg-external.service)" == 'success 0' ]] || return 1
  fi
  if grep -q -- '--target-time' "${file}"; then
    check_pitr_copy /var/tmp/pitr-svc_a || return 1
  fi
  return 0
}

# The packages step names the package of every program the scripts, the restore check and the
# drill run (this machine has them all, so the step alone could not tell a package is missing).
readme_lists_packages_of() {
  local listed=" $1 " program pkg
  for program in /usr/lib/postgresql/15/bin/{pg_basebackup,pg_receivewal,pg_verifybackup,pg_waldump,pg_ctl,postgres,psql} \
    /usr/bin/borg /usr/bin/rsync /usr/bin/sudo; do
    pkg="$(dpkg -S "$(readlink -f "${program}")" | head -n 1 | cut -d: -f1)"
    if [[ "${listed}" != *" ${pkg} "* ]]; then
      printf 'the packages step does not install %s (it provides %s)\n' "${pkg}" "${program}" >&2
      return 1
    fi
  done
}

# The point-in-time copy starts as it is (no restore_command, no recovery.signal, no WAL staging
# left) and holds the state at the target: the kept row and the table, not what came after.
check_pitr_copy() {
  local dest="$1" sock=/run/pgbtest-pitr marks rows
  if grep -Eq '^[[:space:]]*(restore_command|recovery_target)' "${CT_ROOT}${dest}/postgresql.auto.conf"; then
    printf 'recovery settings still active in %s/postgresql.auto.conf\n' "${dest}" >&2
    return 1
  fi
  if [[ -e "${CT_ROOT}${dest}/recovery.signal" || -e "${CT_ROOT}${dest}-wal" ]]; then
    printf 'recovery.signal or the WAL staging dir left by the point-in-time restore\n' >&2
    return 1
  fi
  in_ct install -d -o postgres -m 0700 "${sock}"
  in_ct runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "${dest}" -l "${sock}/log" -w -t 120 \
    -o "-c port=55990 -c listen_addresses='' -c unix_socket_directories=${sock}" start >/dev/null || return 1
  marks="$(in_ct /usr/lib/postgresql/15/bin/psql -X -At -h "${sock}" -p 55990 -U postgres -d postgres -c "SELECT string_agg(note, ',') FROM marks" 2>&1 || true)"
  rows="$(in_ct /usr/lib/postgresql/15/bin/psql -X -At -h "${sock}" -p 55990 -U postgres -d postgres -c 'SELECT count(*) FROM t' 2>&1 || true)"
  in_ct runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "${dest}" -m fast -w stop >/dev/null || return 1
  printf '# the point-in-time copy: marks=%s, rows of t=%s\n' "${marks}" "${rows}" >&3
  [[ "${marks}" == kept && "${rows}" == 20000 ]]
}

@test "the server README's sh blocks run in order, as written: install to first night, restore and point-in-time restore" {
  local count started="${SECONDS}"
  count="$(cat "${PGB_T}/runbook.count")"
  (( count >= 10 )) || fail "only ${count} sh block(s) in the README"
  CT_DIAG_UNITS=(pg-backup-all.service pgb-borg-primary.service pgb-borg-external.service pgb-receivewal@svc_a.service)
  runbook_run "${RB}" ct_run_block
  printf '# %s blocks in %s s\n' "${count}" "$((SECONDS - started))" >&3
  # Every block ran, and its clean-up steps left nothing behind.
  assert [ -f "${RB}/$(printf '%03d' "${count}").log" ]
  assert [ ! -e "${CT_ROOT}/var/tmp/pitr-svc_a" ]
  assert [ ! -e "${CT_ROOT}/var/tmp/restore-svc_a" ]
}

@test "the runbook left what it promises: both disks from fstab, both repositories, the receivers and timers running" {
  run in_ct findmnt -n -o SOURCE,FSTYPE /mnt/backup
  assert_output 'pgbtest-backup tmpfs'
  run in_ct findmnt -n -o SOURCE,FSTYPE /media/usb
  assert_output 'pgbtest-usb tmpfs'
  # The disks are mounted in the container's own mount namespace.
  run in_ct test -f /mnt/backup/borg/config -a -f /media/usb/borg/config
  assert_success
  # One line per unit (is-active exits 0 when any one of them is active).
  run in_ct systemctl is-active pgb-receivewal@svc_a.service pgb-receivewal@svc_b.service pg-backup-all.timer pgb-restore-drill.timer
  assert_output "$(printf 'active\nactive\nactive\nactive')"
  run in_ct ls -d /root/pgb-config-backups
  assert_failure # the Docker step (a ```bash block) did not run here
}

@test "a USB drive smaller than the reserve: repo init and the nightly external copy refuse it, saying why" {
  run in_ct /root/default-reserve/pgb_repo_init.sh
  assert_failure
  assert_output --regexp 'the external drive at /media/usb holds [0-9]+ bytes, not more than the 629145600 bytes Borg keeps free on it \(repos.external.reserveBytes\)'
  run in_ct /root/default-reserve/borg_pg_artifacts.sh external
  assert_failure
  assert_output --partial 'not more than the 629145600 bytes Borg keeps free on it'
  assert_output --partial 'external repository FAILED'
}
