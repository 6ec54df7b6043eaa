#!/usr/bin/env bats
# Unit suite of the generated pgb_receivewal.sh: pg_receivewal is a stub under the fake
# pgBinRoot (<root>/<version>/bin) that logs its argv and the password file it was given;
# findmnt is a PATH stub. Everything else is real.

load helpers

setup_file() {
  ut_setup_file
}

teardown_file() {
  ut_teardown_file
}

# pg_receivewal stub. --create-slot: exits with STUB_STATE/create_rc (default 0).
# Streaming: records the password file's path and content; with STUB_STATE/stream_wait it
# writes STUB_STATE/streaming and waits for SIGINT (exit 0, records "INT") or SIGTERM; else exits with
# STUB_STATE/stream_rc (default 1, a lost connection).
make_receivewal_stub() {
  # shellcheck disable=SC2016
  make_stub "${PG_BIN_ROOT}/$1/bin/pg_receivewal" '
printf "%s|%s\n" "${PGPASSFILE:-none}" "$(cat "${PGPASSFILE:-/dev/null}" 2>/dev/null)" >>"${STUB_LOG}/pgpass.log"
if [[ " $* " == *" --create-slot "* ]]; then
  exit "$(cat "${STUB_STATE}/create_rc" 2>/dev/null || echo 0)"
fi
if [[ -f "${STUB_STATE}/stream_wait" ]]; then
  # A background job of a script starts with SIGINT ignored, which bash cannot trap again; the
  # real pg_receivewal installs its own handler, and so does this perl.
  exec perl -e '\''
    my $state = shift;
    $SIG{INT} = sub { open(my $f, ">>", "$state/signals"); print $f "INT\n"; close($f); exit 0 };
    $SIG{TERM} = sub { open(my $f, ">>", "$state/signals"); print $f "TERM\n"; close($f); exit 143 };
    open(my $f, ">", "$state/streaming"); close($f);
    sleep 1 while 1;
  '\'' "${STUB_STATE}"
fi
exit "$(cat "${STUB_STATE}/stream_rc" 2>/dev/null || echo 1)"' pg_receivewal
}

setup() {
  ut_setup
  ut_build
  RECEIVE_SCRIPT="${BACKUP_SCRIPT%/*}/pgb_receivewal.sh"
  export RECEIVE_SCRIPT
  make_findmnt_stub
  ut_mount "${BACKUP_MOUNT}"
  make_receivewal_stub 15
  ut_secret "${REPL_PASS_FILE}" 'repl-S3cret:pw\x'
  # The script's own temp dir (its password file) lands here, so the test can look at it.
  export TMPDIR="${BATS_TEST_TMPDIR}/tmp"
  mkdir -p "${TMPDIR}"
}

teardown() {
  ut_teardown
}

@test "usage: exactly one argument, a configured service; anything else exits 2 and streams nothing" {
  run bash "${RECEIVE_SCRIPT}"
  assert_failure 2
  assert_output --partial "usage: pgb_receivewal.sh SERVICE"
  run bash "${RECEIVE_SCRIPT}" svc_a svc_b
  assert_failure 2
  run bash "${RECEIVE_SCRIPT}" svc_nope
  assert_failure 2
  assert_output --partial "unknown service: svc_nope"
  assert_output --partial "one of svc_a svc_b"
  assert_equal "$(stub_count pg_receivewal)" 0
}

@test "creates the slot idempotently, then streams synchronously into the service's WAL dir with it" {
  echo 1 >"${STUB_STATE}/stream_rc"
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 1
  run stub_calls pg_receivewal
  assert_line --index 0 "-h 127.0.0.1 -p 5433 -U ${REPL_USER} -w --create-slot --if-not-exists -S pgb_svc_a"
  assert_line --index 1 "-h 127.0.0.1 -p 5433 -U ${REPL_USER} -w -D ${WAL_DIR}/svc_a -S pgb_svc_a --synchronous --no-loop -s 10"
  assert_equal "${#lines[@]}" 2
  assert [ -d "${WAL_DIR}/svc_a" ]
  assert_equal "$(stat -c %a "${WAL_DIR}/svc_a")" 750
  assert_equal "$(stat -c %a "${WAL_DIR}")" 750
}

@test "the password reaches pg_receivewal only through a private pgpass file, escaped, removed afterwards" {
  run bash "${RECEIVE_SCRIPT}" svc_b
  assert_failure
  run grep -rF 'S3cret' "${STUB_LOG}/pg_receivewal.log"
  assert_failure
  run cut -d'|' -f2 "${STUB_LOG}/pgpass.log"
  assert_line --index 0 '*:*:*:repl_backup:repl-S3cret\:pw\\x'
  assert_line --index 1 '*:*:*:repl_backup:repl-S3cret\:pw\\x'
  local passfile
  passfile="$(head -n 1 "${STUB_LOG}/pgpass.log" | cut -d'|' -f1)"
  [[ "${passfile}" == "${TMPDIR}"/* ]]
  assert [ ! -e "${passfile}" ]
  assert [ -z "$(find "${TMPDIR}" -mindepth 1)" ]
}

@test "a lost connection ends the run with pg_receivewal's status, for systemd to restart it" {
  echo 3 >"${STUB_STATE}/stream_rc"
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 3
  assert_output --partial "pg_receivewal ended (rc 3); systemd restarts it"
}

@test "pg_receivewal ending with status 0 on its own is still a failure (exit 1)" {
  echo 0 >"${STUB_STATE}/stream_rc"
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 1
  assert_output --partial "pg_receivewal ended (rc 0)"
}

@test "the slot cannot be created: exit 1, no streaming" {
  echo 1 >"${STUB_STATE}/create_rc"
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 1
  assert_output --partial "could not create replication slot pgb_svc_a on 127.0.0.1:5433"
  assert_equal "$(stub_count pg_receivewal)" 1
}

@test "SIGTERM (systemctl stop) is passed on as SIGINT; the script exits 0 and removes its password file" {
  : >"${STUB_STATE}/stream_wait"
  bash "${RECEIVE_SCRIPT}" svc_a >"${BATS_TEST_TMPDIR}/out" 2>&1 3>&- &
  local pid=$! i rc=0
  for i in $(seq 1 100); do
    [[ -f "${STUB_STATE}/streaming" ]] && break
    sleep 0.05
  done
  assert [ -f "${STUB_STATE}/streaming" ]
  assert [ -n "$(find "${TMPDIR}" -name pgpass)" ]
  kill -TERM "${pid}"
  for i in $(seq 1 100); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "${pid}" 2>/dev/null; then
    local child
    for child in $(pgrep -P "${pid}"); do
      kill -KILL "${child}"
    done
    kill -KILL "${pid}"
    fail "the script did not stop within 5 s of SIGTERM"
  fi
  wait "${pid}" || rc=$?
  assert_equal "${rc}" 0
  assert_equal "$(cat "${STUB_STATE}/signals")" INT
  run cat "${BATS_TEST_TMPDIR}/out"
  assert_output --partial "stopped on request"
  assert [ -z "$(find "${TMPDIR}" -mindepth 1)" ]
}

@test "unmounted backup disk: refuses before writing anything or connecting" {
  ut_unmount "${BACKUP_MOUNT}"
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 1
  assert_output --partial "is not a mounted filesystem; refusing to write WAL to the root disk"
  assert [ ! -e "${WAL_DIR}" ]
  assert_equal "$(stub_count pg_receivewal)" 0
}

@test "automount point without its disk (findmnt shows only autofs) counts as unmounted" {
  ut_unmount "${BACKUP_MOUNT}"
  ut_mount "${BACKUP_MOUNT}" autofs
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 1
  assert [ ! -e "${WAL_DIR}" ]
}

@test "the PostgreSQL client of the service's version is missing: clear error, nothing else" {
  UT_SERVICES="svc_a:5433:16 svc_b:5434:15" ut_build
  run bash "${BACKUP_SCRIPT%/*}/pgb_receivewal.sh" svc_a
  assert_failure 1
  assert_output --partial "PostgreSQL 16 client not installed (${PG_BIN_ROOT}/16/bin); install postgresql-client-16"
  assert_equal "$(stub_count pg_receivewal)" 0
}

@test "replication password file missing, empty, placeholder or readable by others: refuses" {
  rm -f "${REPL_PASS_FILE}"
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 1
  assert_output --partial "secret file missing: ${REPL_PASS_FILE}"
  ut_secret "${REPL_PASS_FILE}" 'REPLACE_WITH_STRONG_SECRET'
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 1
  assert_output --partial "placeholder"
  ut_secret "${REPL_PASS_FILE}" 'good' 0644
  run bash "${RECEIVE_SCRIPT}" svc_a
  assert_failure 1
  assert_output --partial "readable or writable by others"
  assert_equal "$(stub_count pg_receivewal)" 0
}

@test "a service with wal: false is refused by name" {
  local out="${UT_ROOT}/builds/nowal"
  if [[ ! -d "${out}" ]]; then
    ut_write_config "${out}.yaml"
    sed -i 's/{ name: svc_b, port: 5434, pgVersion: 15 }/{ name: svc_b, port: 5434, pgVersion: 15, wal: false }/' "${out}.yaml"
    grep -q 'wal: false' "${out}.yaml"
    node "${UT_REPO_ROOT}/dist/cli/main.js" build -c "${out}.yaml" -o "${out}" >/dev/null
  fi
  run bash "${out}/alpha/root/usr/local/sbin/pgb_receivewal.sh" svc_b
  assert_failure 1
  assert_output --partial "WAL streaming is disabled for this service in the config (wal: false)"
  assert_equal "$(stub_count pg_receivewal)" 0
  # The unit is still one template; the install enables it only for the WAL services.
  run grep -c 'pgb-receivewal@svc_b' "${out}/alpha/install.sh"
  assert_output 0
}
