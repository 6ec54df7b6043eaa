#!/usr/bin/env bats
# The dev README is executable documentation: its ```sh blocks run here in order and as written,
# on a dev machine that is a systemd host (the nspawn rig of helpers/nspawn.bash: systemd as PID 1,
# sharing the suite's network namespace, so it reaches 127.0.0.1), from the packages to the first
# pull, then, with the server's PostgreSQL and sshd stopped, a verified restore and a point-in-time
# restore from the pulled copy alone. Beside it a real server (helpers/server.bash): a PostgreSQL 15
# cluster on 127.0.0.1 (16 MiB segments, fsync and synchronous_commit on) with the GENERATED
# pgb_receivewal.sh streaming, a real nightly (pg_backup_all.sh), and a real sshd on 127.0.0.1 whose
# pull key runs the GENERATED forced command (sudo -n rsync --daemon with the GENERATED rsyncd config).
# Then Arch's layout (the pacman build's pgBinRoot block over a flat bin dir) and the RPO with the
# real pull-server-wal.timer firing.
#
# What the test substitutes, and nothing else (runbook_substitute):
#   - `sudo apt update` / `sudo apt install -y PKGS`: no network; the packages must be installed
#     already (`dpkg-query -W PKGS`);
#   - `expected='SHA256:paste-...'`: the fingerprint `ssh-keygen -lf` shows of the test sshd's host
#     key on the server side (the README's console step);
#   - `--target-time '...'`: the moment of the test's own mistake.
# What the test does itself, as the README tells the reader to do on the server (```bash and prose):
#   - appends the authorized_keys line pgb_pull_keygen.sh printed to the server's authorized_keys;
#   - before section 6 it makes the mistake to undo, waits until its WAL is on the dev machine (the
#     timer's pull), then stops the server's receiver, PostgreSQL and sshd.
# The config's walSchedule is `*:*:0/20` (every 20 s) so the RPO test measures the timer in seconds.

SRV=rbdev-srv
DEV=rbdev-dev
PG_PORT=55951
SSH_PORT=55952
STORE_REL="mnt/upload/${SRV}/postgres"

setup_file() {
  load helpers/load
  load helpers/nspawn
  load helpers/runbook
  pgb_require_root
  pgb_ensure_pkg systemd-nspawn systemd-container
  export PGB_SERVICES="svc:${PG_PORT}" PGB_WAL=true PGB_WAL_SEGSIZE=16 PGB_SSH_PORT="${SSH_PORT}" PGB_SSH_USER=root
  export PGB_SERVER_NAME="${SRV}" RSYNCD_LIVE="/etc/pgb-gen/rsyncd-${SRV}.conf"
  export PGB_DEVS_YAML="devs:
  - name: ${DEV}
    pullFrom: [${SRV}]
    address: 127.0.0.1
    walSchedule: \"*:*:0/20\""
  pgb_server_setup
  export CT_ROOT="${PGB_T}/ct" RB="${PGB_T}/runbook" SSHD_DIR="${PGB_T}/sshd"
  pg_psql "${PG_PORT}" -c 'ALTER SYSTEM SET fsync = on' -c 'ALTER SYSTEM SET synchronous_commit = on' \
    -c 'SELECT pg_reload_conf()' >/dev/null
  pg_psql "${PG_PORT}" -c 'CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g' \
    -c 'CREATE TABLE marks (note text, at timestamptz DEFAULT clock_timestamp())'
  receiver_start
  pgb_nightly night1 "" none
  [[ "${PGB_BACKUP_RC}" == 0 ]] || { cat "${PGB_T}/logs/night1.backup.log" >&2; return 1; }
  server_sshd_setup

  # The same dev machine built for Arch: its README's pgBinRoot block and its restore script.
  sed -e 's|^    walSchedule: .*|&\n    packageManager: pacman\n    pgBinRoot: /opt/pgb/postgresql|' \
    "${PGB_T}/pgb.config.yaml" >"${PGB_T}/arch.yaml"
  pgb_generate "${PGB_T}/arch.yaml" "${PGB_T}/out-arch" >"${PGB_T}/logs/build-arch.log" 2>&1

  ct_make_root
  mkdir -p "${CT_ROOT}/root/bundle" "${CT_ROOT}/root/arch"
  cp -a "${PGB_T}/out/${DEV}/." "${CT_ROOT}/root/bundle/"
  cp -a "${PGB_T}/out-arch/${DEV}/root/usr/local/sbin/pgb-restore.sh" "${CT_ROOT}/root/arch/"
  runbook_extract "${PGB_T}/out/${DEV}/README.md" "${RB}" >"${PGB_T}/runbook.count"
  runbook_extract "${PGB_T}/out-arch/${DEV}/README.md" "${PGB_T}/runbook-arch" >/dev/null
  CT_NAME="i18-rbdev-$$" CT_NETWORK=host ct_boot
}

teardown_file() {
  load helpers/load
  load helpers/nspawn
  [[ -n "${PGB_T:-}" ]] || return 0
  ct_teardown
  rm -f -- "${RSYNCD_LIVE}"
  if [[ -f "${PGB_T}/created-etc-pgb-gen" ]]; then
    rmdir /etc/pgb-gen 2>/dev/null || true
  fi
  pgb_teardown_all
}

setup() {
  load helpers/load
  load helpers/nspawn
  load helpers/runbook
  ct_attach
}

# --- the server ---------------------------------------------------------------------------------

# The receiver as its unit runs it, streaming into the backup disk's WAL dir.
receiver_start() {
  "${PGB_SBIN}/pgb_receivewal.sh" svc >>"${PGB_T}/logs/receivewal.log" 2>&1 </dev/null 3>&- &
  printf '%s\n' "$!" >"${PGB_T}/receivewal.pid"
  pgb_started_add pid "$!"
  pgb_wait_for "pg_receivewal to stream" 120 receiver_state receiver_streaming
}

receiver_streaming() {
  [[ "$(pg_psql "${PG_PORT}" -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal'")" == 1 ]]
}

receiver_state() {
  pgb_tail_file "${PGB_T}/logs/receivewal.log"
}

# The receiver has flushed WAL up to LSN.
receiver_flushed_to() {
  [[ "$(pg_psql "${PG_PORT}" -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal' AND flush_lsn >= '$1'")" == 1 ]]
}

# The server's sshd: the generated daemon config live where the forced command names it (its
# hard-link check from the build tree), an authorized_keys the README's key step fills.
server_sshd_setup() {
  if [[ ! -d /etc/pgb-gen ]]; then
    install -d -m 0755 -o root -g root /etc/pgb-gen
    : >"${PGB_T}/created-etc-pgb-gen"
  fi
  sed "s|^pre-xfer exec = .*|pre-xfer exec = ${PGB_SBIN}/pgb_pull_links.sh|" \
    "${PGB_T}/out/${SRV}/root${RSYNCD_LIVE}" >"${PGB_T}/rsyncd.conf"
  install -m 0644 -o root -g root "${PGB_T}/rsyncd.conf" "${RSYNCD_LIVE}"
  mkdir -p "${SSHD_DIR}"
  : >"${SSHD_DIR}/authorized_keys"
  pgb_sshd_start "${SSHD_DIR}" "${SSH_PORT}" root "${SSHD_DIR}/authorized_keys" "${SSHD_DIR}/known_hosts"
}

# The sshd again after server_stop, with its config and host key.
server_sshd_restart() {
  pgb_sshd_privsep_dir
  /usr/sbin/sshd -D -f "${SSHD_DIR}/sshd_config" -E "${PGB_T}/logs/sshd.log" 3>&- &
  pgb_started_add pid "$!"
  pgb_wait_for "the test sshd to listen on 127.0.0.1:${SSH_PORT}" 120 pgb_sshd_state pgb_port_open "${SSH_PORT}"
}

stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  pgb_wait_for "pid $1 to exit" 60 - pgb_pid_gone "$1"
}

# The server is gone: receiver, PostgreSQL and sshd stopped.
server_stop() {
  stop_pid "$(cat "${PGB_T}/receivewal.pid")" || return 1
  pg_cluster_stop "$(pg_service_dir svc)" || return 1
  stop_pid "$(cat "${SSHD_DIR}/sshd.pid")" || return 1
  ! pgb_port_open "${SSH_PORT}" && ! pgb_port_open "${PG_PORT}"
}

server_start() {
  pg_cluster_start "$(pg_service_dir svc)"
  receiver_start
  server_sshd_restart
}

# "rows|md5" of a table of the source.
source_digest() {
  pg_table_digest "${PG_PORT}" "$1" "$2"
}

# The segment holding the last byte before LSN and that byte's offset: "NAME BYTES".
wal_position() {
  pg_psql "${PG_PORT}" -c "SELECT file_name || ' ' || (file_offset + 1) FROM pg_walfile_name_offset('$1'::pg_lsn - 1)"
}

# dev_has_wal NAME BYTES: the dev machine's copy of segment NAME (complete or .partial) holds the
# first BYTES bytes the server's receiver flushed (call after receiver_flushed_to).
dev_has_wal() {
  local name="$1" bytes="$2" ours="" theirs="" f
  for f in "${CT_ROOT}/${STORE_REL}/wal/svc/${name}" "${CT_ROOT}/${STORE_REL}/wal/svc/${name}.partial"; do
    [[ ! -f "${f}" ]] || { ours="${f}"; break; }
  done
  for f in "${PGB_ARTIFACTS}/wal/svc/${name}" "${PGB_ARTIFACTS}/wal/svc/${name}.partial"; do
    [[ ! -f "${f}" ]] || { theirs="${f}"; break; }
  done
  [[ -n "${ours}" && -n "${theirs}" ]] && cmp -s -n "${bytes}" -- "${ours}" "${theirs}"
}

wal_pull_state() {
  in_ct systemctl --no-pager list-timers pull-server-wal.timer 2>&1 || true
  in_ct journalctl --no-pager -n 30 -u pull-server-wal.service 2>&1 || true
  ls -l "${CT_ROOT}/${STORE_REL}/wal/svc" "${PGB_ARTIFACTS}/wal/svc" 2>&1 || true
}

wal_pull_idle() {
  [[ "$(in_ct systemctl show -p ActiveState --value pull-server-wal.service)" != activating ]]
}

# wait_dev_has LSN: waits (on the state, no pull run by hand) until the WAL up to LSN is here.
wait_dev_has() {
  local lsn="$1" pos
  pgb_wait_for "the receiver to flush ${lsn}" 60 receiver_state receiver_flushed_to "${lsn}" || return 1
  pos="$(wal_position "${lsn}")" || return 1
  # shellcheck disable=SC2086 # NAME BYTES
  pgb_wait_for "the WAL up to ${lsn} (${pos}) on the dev machine, from pull-server-wal.timer" 120 wal_pull_state \
    dev_has_wal ${pos}
}

# --- the README run -----------------------------------------------------------------------------

runbook_substitute() {
  local target="" fp
  [[ ! -f "${PGB_T}/target-time" ]] || target="$(cat "${PGB_T}/target-time")"
  fp="$(ssh-keygen -lf "${SSHD_DIR}/host_key.pub" | cut -d' ' -f2)"
  sed -E "${RUNBOOK_APT_OFFLINE[@]}" \
    -e "s#^expected='SHA256:paste-[^']*'#expected='${fp}'#" \
    -e "s/--target-time '[^']*'/--target-time '${target}'/"
}

server_clock_after() {
  [[ "$(pg_psql "${PG_PORT}" -c "SELECT clock_timestamp() > '$1'::timestamptz")" == t ]]
}

# Before section 6: the mistake to undo (half of t deleted after the target time), its WAL on the
# dev machine by the timer, then the server gone.
the_mistake_then_the_server_gone() {
  local target lsn
  pg_psql "${PG_PORT}" -c "INSERT INTO marks (note) VALUES ('kept')" || return 1
  source_digest t id >"${PGB_T}/digest-before" || return 1
  target="$(pg_psql "${PG_PORT}" -c "SELECT to_char(date_trunc('second', clock_timestamp() AT TIME ZONE 'UTC') + interval '1 second', 'YYYY-MM-DD HH24:MI:SS') || '+00'")" || return 1
  pgb_wait_for "the server's clock to pass the target time ${target}" 30 - server_clock_after "${target}" || return 1
  pg_psql "${PG_PORT}" -c 'DELETE FROM t WHERE id % 2 = 0' -c "INSERT INTO marks (note) VALUES ('lost')" || return 1
  source_digest t id >"${PGB_T}/digest-after" || return 1
  lsn="$(pg_psql "${PG_PORT}" -c 'SELECT pg_current_wal_insert_lsn()')" || return 1
  wait_dev_has "${lsn}" || return 1
  printf '%s\n' "${target}" >"${PGB_T}/target-time"
  server_stop
}

runbook_before_block() {
  local file="$2"
  if grep -q 'pgb-restore.sh list' "${file}"; then
    the_mistake_then_the_server_gone || return 1
  fi
  if grep -q -- '--target-time' "${file}"; then
    runbook_substitute <"${RB}/$1.sh" >"${file}"
  fi
  return 0
}

# in_copy DEST SQL: starts a restored copy in the dev machine on its own socket, prints what SQL
# returns, stops it.
in_copy() {
  local dest="$1" sock=/run/pgbtest-copy out rc=0
  in_ct install -d -o postgres -m 0700 "${sock}"
  in_ct runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "${dest}" -l "${sock}/log" -w -t 120 \
    -o "-c port=55990 -c listen_addresses='' -c unix_socket_directories=${sock} -c archive_mode=off" start >/dev/null || {
    cat "${CT_ROOT}${sock}/log" >&2
    return 1
  }
  out="$(in_ct /usr/lib/postgresql/15/bin/psql -X -At -v ON_ERROR_STOP=1 -h "${sock}" -p 55990 -U postgres -d postgres -c "$2")" || rc=$?
  in_ct runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "${dest}" -m fast -w stop >/dev/null || rc=1
  printf '%s\n' "${out}"
  return "${rc}"
}

copy_digest() {
  in_copy "$1" "SELECT count(*) || '|' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY id)), '-') FROM t t"
}

# copy_holds DEST DIGEST_FILE MARKS: the copy's t is the source's at that moment, marks as named.
copy_holds() {
  local dest="$1" want got marks
  want="$(cat "$2")"
  got="$(copy_digest "${dest}")" || return 1
  marks="$(in_copy "${dest}" "SELECT string_agg(note, ',' ORDER BY at) FROM marks")" || return 1
  printf '# %s: t %s (source %s), marks %s\n' "${dest}" "${got}" "${want}" "${marks}" >&3
  [[ "${got}" == "${want}" && "${marks}" == "$3" ]]
}

# What the README's reader sees after each step, and the state it leaves. Each check returns at
# once when it fails (a hook runs under `||`, where set -e does not stop).
runbook_after_block() {
  local file="$2" log="${RB}/$1.log" line target
  if grep -q '^dpkg-query -W ' "${file}"; then
    # Every package the dev scripts need is in the step: rsync, ssh, sudo, the server package.
    for line in rsync openssh-client sudo postgresql-15; do
      grep -qE "^dpkg-query -W .*\\b${line}( |$)" "${file}" || { printf 'the packages step lacks %s\n' "${line}" >&2; return 1; }
    done
  fi
  if grep -q '^sudo ./install.sh --dry-run' "${file}"; then
    grep -q 'next 1: sudo /usr/local/sbin/pgb_pull_keygen.sh' "${log}" || return 1
    [[ "$(in_ct systemctl is-enabled pull-server-wal.timer 2>&1)" != enabled ]] || return 1
  fi
  if grep -q 'pgb_pull_keygen.sh' "${file}"; then
    # On the server (the README's step there): the printed line goes into the pull user's file.
    line="$(grep -A1 "^# On ${SRV}: append this line" "${log}" | tail -n 1)"
    [[ "${line}" == restrict,from=\"127.0.0.1\",command=* ]] || { printf 'no authorized_keys line for %s in the output\n' "${SRV}" >&2; return 1; }
    printf '%s\n' "${line}" >>"${SSHD_DIR}/authorized_keys"
  fi
  if grep -q '^expected=' "${file}"; then
    grep -q "^pinned ${SRV}: SHA256:" "${log}" || return 1
    [[ "$(grep -c "^\[127.0.0.1\]:${SSH_PORT} ssh-ed25519 " "${CT_ROOT}/etc/backup/ssh/known_hosts")" == 1 ]] || return 1
  fi
  if grep -q '^sudo systemctl start pull-server-backups.service' "${file}"; then
    [[ "$(unit_result pull-server-backups.service)" == 'success 0' ]] || return 1
    grep -q "verified and kept: svc_basebackup_" "${log}" || return 1
    [[ "$(in_ct systemctl is-active pull-server-backups.timer pull-server-wal.timer | paste -sd' ')" == 'active active' ]] || return 1
  fi
  if grep -q "^sudo sh -c 'ls -l /mnt/upload/\*/'" "${file}"; then
    grep -qE ' postgres$' "${log}" || return 1
  fi
  if grep -q -- '--dest /var/tmp/restore --verify' "${file}"; then
    grep -q '\[svc\] recovery ended at the last transaction replayed, ' "${log}" || return 1
    grep -q 'point in time: from ' "${log}" || return 1
    copy_holds /var/tmp/restore "${PGB_T}/digest-after" kept,lost || return 1
  fi
  if grep -q -- '--target-time' "${file}"; then
    # It ended at the last transaction before the target, and says so.
    line="$(sed -n 's/.*\[svc\] recovery ended at the last transaction replayed, \([0-9-]* [0-9:]*+00\) .*/\1/p' "${log}")"
    target="$(cat "${PGB_T}/target-time")"
    printf '# point in time: target %s, recovery ended at %s\n' "${target}" "${line}" >&3
    [[ -n "${line}" && ( "${line}" < "${target}" || "${line}" == "${target}" ) ]] || return 1
    copy_holds /var/tmp/pitr "${PGB_T}/digest-before" kept || return 1
  fi
  if grep -q 'psql -h /var/tmp -p 55999 -d postgres -l' "${file}"; then
    grep -qE '^ *postgres +\| postgres' "${log}" || return 1
  fi
  return 0
}

@test "the dev README's sh blocks run in order, as written: packages to first pull, then restore and point-in-time restore with the server gone" {
  local count started="${SECONDS}"
  count="$(cat "${PGB_T}/runbook.count")"
  (( count >= 9 )) || fail "only ${count} sh block(s) in the dev README"
  # shellcheck disable=SC2034 # read by ct_diagnose (helpers/nspawn.bash)
  CT_DIAG_UNITS=(pull-server-backups.service pull-server-wal.service)
  runbook_run "${RB}" ct_run_block
  printf '# %s blocks in %s s\n' "${count}" "$((SECONDS - started))" >&3
  assert [ -f "${RB}/$(printf '%03d' "${count}").log" ]
  # The restore of the server-gone moment said how far its last transaction is from the newest WAL.
  run cat "${RB}"/*.log
  assert_output --regexp 'the last transaction in the WAL: [0-9-]+ [0-9:]+\+00, [0-9]+ s before the newest WAL here'
  # The point-in-time copy starts as it is: no recovery settings or WAL staging left.
  run grep -E '^[[:space:]]*(restore_command|recovery_target)' "${CT_ROOT}/var/tmp/pitr/postgresql.auto.conf"
  assert_failure
  assert [ ! -e "${CT_ROOT}/var/tmp/pitr-wal" ]
}

@test "Arch's layout: the pacman build's pgBinRoot block over a flat bin dir, and --verify restores through it" {
  local block digest
  # Before the layout exists, the Arch build's restore finds no PostgreSQL where pgBinRoot says.
  run in_ct /root/arch/pgb-restore.sh restore --server "${SRV}" --service svc --dest /var/tmp/arch --verify --port 55998
  assert_failure
  assert_output --partial '[svc] PostgreSQL 15 server not installed (/opt/pgb/postgresql/15/bin/pg_ctl)'
  assert [ ! -e "${CT_ROOT}/var/tmp/arch" ]
  # Arch's /usr/bin, emulated: one flat directory of the PostgreSQL programs (links to Debian's).
  in_ct install -d /opt/arch-usr-bin
  # shellcheck disable=SC2016 # expanded by the container's sh
  in_ct sh -c 'for f in /usr/lib/postgresql/15/bin/*; do ln -s "$f" /opt/arch-usr-bin/; done'
  block="$(grep -l '^sudo pacman -S' "${PGB_T}"/runbook-arch/*.sh)"
  [[ -n "${block}" ]] || fail "no pacman block in the Arch build's README"
  # Substituted: no pacman here; Arch's /usr/bin is the emulated flat directory.
  sed -e 's/^sudo pacman -S .*/: no pacman in the test/' -e 's#^sudo ln -sfn /usr/bin #sudo ln -sfn /opt/arch-usr-bin #' \
    "${block}" >"${PGB_T}/arch-block.sh"
  run ct_run_block "${PGB_T}/arch-block.sh"
  assert_success
  run in_ct readlink -f /opt/pgb/postgresql/15/bin/pg_ctl
  assert_output /usr/lib/postgresql/15/bin/pg_ctl
  run in_ct /root/arch/pgb-restore.sh restore --server "${SRV}" --service svc --dest /var/tmp/arch --verify --port 55998
  assert_success
  assert_output --partial '[svc] verified: /var/tmp/arch recovered'
  digest="$(copy_digest /var/tmp/arch)"
  assert_equal "${digest}" "$(cat "${PGB_T}/digest-after")"
}

@test "RPO with pull-server-wal.timer firing on its own: commit on the server to its WAL on the dev machine" {
  local i t0 t1 lsn lat max=0 sum=0 n=3 accuracy pull_us pull_max=0
  server_start
  accuracy="$(in_ct systemctl show -p AccuracyUSec --value pull-server-wal.timer)"
  assert_equal "${accuracy}" 1s
  for (( i = 1; i <= n; i++ )); do
    pg_psql "${PG_PORT}" -c "INSERT INTO marks (note) VALUES ('rpo-${i}')"
    t0="$(date +%s.%N)"
    lsn="$(pg_psql "${PG_PORT}" -c 'SELECT pg_current_wal_insert_lsn()')"
    wait_dev_has "${lsn}"
    t1="$(date +%s.%N)"
    lat="$(awk -v a="${t0}" -v b="${t1}" 'BEGIN { printf "%.1f", b - a }')"
    # How long the pull that brought it ran (that run of the service, by systemd's clock).
    pgb_wait_for "the pull that brought it to finish" 120 wal_pull_state wal_pull_idle
    pull_us="$(in_ct systemctl show -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic --value pull-server-wal.service \
      | paste -sd' ' | awk '{ print ($2 > $1 ? $2 - $1 : 0) }')"
    printf '# RPO commit %s: on the dev machine %s s after it returned (timer *:*:0/20; that pull ran %.1f s)\n' \
      "${i}" "${lat}" "$(awk -v u="${pull_us}" 'BEGIN { print u / 1e6 }')" >&3
    sum="$(awk -v a="${sum}" -v b="${lat}" 'BEGIN { print a + b }')"
    max="$(awk -v a="${max}" -v b="${lat}" 'BEGIN { print (b > a ? b : a) }')"
    pull_max="$(awk -v a="${pull_max}" -v b="${pull_us}" 'BEGIN { print (b > a ? b : a) }')"
  done
  printf '# RPO measured: %s s on average, %s s at most over %s commits at walSchedule *:*:0/20 (AccuracySec %s)\n' \
    "$(awk -v s="${sum}" -v n="${n}" 'BEGIN { printf "%.1f", s / n }')" "${max}" "${n}" "${accuracy}" >&3
  printf '# RPO at the default *:0/5: at most 300 s + 1 s accuracy + %.1f s pull = %.1f s\n' \
    "$(awk -v u="${pull_max}" 'BEGIN { print u / 1e6 }')" "$(awk -v u="${pull_max}" 'BEGIN { print 301 + u / 1e6 }')" >&3
  # Within one interval plus accuracy plus a pull, never a day.
  awk -v m="${max}" 'BEGIN { exit !(m < 20 + 1 + 30) }'
}
