#!/usr/bin/env bats
# Unit suite of the generated pg_backup_all.sh: pg_basebackup and pg_verifybackup are stubs
# under a fake pgBinRoot (<root>/<version>/bin), findmnt is a PATH stub; everything else
# (coreutils, find, flock, rsync for the settings copy) is real.

# Stub knobs are exported per test on purpose: each test runs in its own process.
# shellcheck disable=SC2030,SC2031

load helpers

setup_file() {
  ut_setup_file
}

teardown_file() {
  ut_teardown_file
}

# make_pg_stubs VERSION...: pg_basebackup writes a plain backup (backup_label with START WAL
# segment STUB_START_SEG) into -D, or fails for the ports in STUB_FAIL_PORTS; it records the
# PGPASSFILE it was given. STUB_SLEEP makes it take a while and record start/end events.
# pg_verifybackup exits STUB_VERIFY_RC, or 1 when its arguments match the regex STUB_VERIFY_FAIL;
# with STUB_VERIFY_PROBE (a relative path) it records its first argument and that file's link
# count in STUB_STATE/verify-probe (before or after the links).
make_pg_stubs() {
  local v
  for v in "$@"; do
    # shellcheck disable=SC2016
    make_stub "${PG_BIN_ROOT}/${v}/bin/pg_basebackup" '
dest="" port="" algorithm=CRC32C
while (( $# )); do
  case "$1" in
    -D) dest="$2"; shift ;;
    -p) port="$2"; shift ;;
    --manifest-checksums=*) algorithm="${1#*=}" ;;
  esac
  shift
done
printf "%s %s\n" "${PGPASSFILE:-none}" "$(cat "${PGPASSFILE:-/dev/null}" 2>/dev/null)" >>"${STUB_LOG}/pgpass.log"
if [[ -n "${STUB_SLEEP:-}" ]]; then
  printf "+\n" >>"${STUB_STATE}/events"
  sleep "${STUB_SLEEP}"
  printf "%s\n" "-" >>"${STUB_STATE}/events"
fi
if [[ " ${STUB_FAIL_PORTS:-} " == *" ${port} "* ]]; then
  printf "pg_basebackup: error: connection to server at \"127.0.0.1\", port %s failed: Connection refused\n" "${port}" >&2
  exit 1
fi
mkdir -p "${dest}"
printf "START WAL LOCATION: 0/10000028 (file %s)\nCHECKPOINT LOCATION: 0/10000060\n" "${STUB_START_SEG:-000000010000000000000010}" >"${dest}/backup_label"
printf "%s\n" "'"${v}"'" >"${dest}/PG_VERSION"
if [[ -n "${STUB_DATA:-}" ]]; then
  # The files of STUB_DATA (FILE<TAB>CHECKSUM<TAB>CONTENT lines) and a manifest in PostgreSQL'"'"'s
  # layout, its checksums of the length of the algorithm asked for (the given hex, 0-padded).
  printf "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n" >"${dest}/backup_manifest"
  # No subshells per file: a test writes hundreds of them.
  width=8
  [[ ${algorithm} != SHA256 ]] || width=64
  printf -v zeros "%0${width}d" 0
  while IFS=$'"'"'\t'"'"' read -r file sum content; do
    [[ "${file}" != */* || -d "${dest}/${file%/*}" ]] || mkdir -p "${dest}/${file%/*}"
    printf "%s" "${content}" >"${dest}/${file}"
    printf "{ \"Path\": \"%s\", \"Size\": %s, \"Last-Modified\": \"2026-12-01 02:00:00 GMT\", \"Checksum-Algorithm\": \"%s\", \"Checksum\": \"%s\" },\n" \
      "${file}" "${#content}" "${algorithm}" "${zeros:${#sum}}${sum}" >>"${dest}/backup_manifest"
  done <"${STUB_DATA}"
  printf "],\n\"Manifest-Checksum\": \"%s\"}\n" "$(date +%s%N)" >>"${dest}/backup_manifest"
else
  printf "{}\n" >"${dest}/backup_manifest"
fi' "pg_basebackup-${v}"
    # shellcheck disable=SC2016
    make_stub "${PG_BIN_ROOT}/${v}/bin/pg_verifybackup" '
dir="${*: -1}"
if [[ -n "${STUB_VERIFY_PROBE:-}" ]]; then
  printf "%s %s\n" "$1" "$(stat -c %h "${dir}/${STUB_VERIFY_PROBE}")" >>"${STUB_STATE}/verify-probe"
fi
if [[ -n "${STUB_VERIFY_FAIL:-}" && "$*" =~ ${STUB_VERIFY_FAIL} ]]; then
  printf "pg_verifybackup: error: checksum mismatch for file \"base/1/200\"\n" >&2
  exit 1
fi
exit "${STUB_VERIFY_RC:-0}"' "pg_verifybackup-${v}"
  done
}

setup() {
  ut_setup
  ut_build
  make_findmnt_stub
  ut_mount "${BACKUP_MOUNT}"
  make_pg_stubs 15
  ut_secret "${REPL_PASS_FILE}" 'repl-S3cret:pw'
  mkdir -p "${HOST_CONFIG}/app"
  printf 'setting=1\n' >"${HOST_CONFIG}/app/app.conf"
}

teardown() {
  ut_teardown
}

# promoted SERVICE: the promoted backup dirs of a service, oldest first.
promoted() {
  find "${BASE_DIR}" -mindepth 1 -maxdepth 1 -type d -name "$1_basebackup_*" -printf '%f\n' 2>/dev/null | sort
}

# old_backup SERVICE OFFSET [START_SEGMENT]: a promoted backup made at date OFFSET.
old_backup() {
  local dir
  dir="${BASE_DIR}/$1_basebackup_$(ut_stamp "$2")"
  mkdir -p "${dir}"
  printf 'START WAL LOCATION: 0/1000028 (file %s)\n' "${3:-000000010000000000000001}" >"${dir}/backup_label"
  printf '%s\n' "${dir##*/}"
}

@test "success: every service backed up with its own client, verified, promoted; sentinel and settings written" {
  run bash "${BACKUP_SCRIPT}"
  assert_success
  assert_output --partial "all 2 base backup(s) verified and promoted"

  local name port dir
  for name in svc_a svc_b; do
    run promoted "${name}"
    assert_equal "${#lines[@]}" 1
    dir="${BASE_DIR}/${lines[0]}"
    assert [ -f "${dir}/backup_label" ]
    assert_equal "$(cat "${dir}/PG_VERSION")" 15
  done
  run find "${BASE_DIR}" -mindepth 1 -maxdepth 1 -name '.tmp_*'
  assert_output ''
  assert [ -f "${SENTINEL}" ]
  assert_equal "$(stat -c '%a' "${ARTIFACTS}")" 750

  # Version-matched binaries, plain format with streamed WAL, into a temp dir first.
  assert_equal "$(stub_count pg_basebackup-15)" 2
  for port in 5433 5434; do
    run stub_count pg_basebackup-15 "^-h 127\.0\.0\.1 -p ${port} -U ${REPL_USER} -w -D ${BASE_DIR}/\.tmp_svc_[ab]_[0-9T_-]+Z -Fp -X stream -c fast --no-sync --manifest-checksums=SHA256$"
    assert_output 1
  done
  # Each temp dir was verified before it was promoted.
  assert_equal "$(stub_count pg_verifybackup-15 "^-q ${BASE_DIR}/\.tmp_svc_a_")" 1
  assert_equal "$(stub_count pg_verifybackup-15 "^-q ${BASE_DIR}/\.tmp_svc_b_")" 1

  # System settings copied with their full path.
  assert_equal "$(cat "${CONFIG_ARTIFACTS}${HOST_CONFIG}/app/app.conf")" 'setting=1'
}

@test "the replication password reaches pg_basebackup only through a private pgpass file, removed afterwards" {
  run bash "${BACKUP_SCRIPT}"
  assert_success
  run grep -rF 'S3cret' "${STUB_LOG}/pg_basebackup-15.log" "${STUB_LOG}/pg_verifybackup-15.log"
  assert_failure
  local pgpass content
  while read -r pgpass content; do
    assert_equal "${content}" "*:*:*:${REPL_USER}:repl-S3cret\\:pw"
    assert [ ! -e "${pgpass}" ]
  done <"${STUB_LOG}/pgpass.log"
  assert_equal "$(wc -l <"${STUB_LOG}/pgpass.log")" 2
}

@test "each service uses the pg_basebackup of its own major version; a missing client fails that service alone" {
  UT_SERVICES="svc_a:5433:15 svc_b:5434:16 svc_c:5435:17" ut_build
  make_pg_stubs 16
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "[svc_c] PostgreSQL 17 client not installed (${PG_BIN_ROOT}/17/bin)"
  assert_equal "$(stub_count pg_basebackup-15 ' -p 5433 ')" 1
  assert_equal "$(stub_count pg_basebackup-16 ' -p 5434 ')" 1
  assert_equal "$(stub_count pg_basebackup-15 ' -p 5434 ')" 0
  run promoted svc_b
  assert_equal "${#lines[@]}" 1
  assert_equal "$(cat "${BASE_DIR}/${lines[0]}/PG_VERSION")" 16
  run promoted svc_c
  assert_output ''
}

@test "one service failing: the others are still backed up and promoted, the run exits 1" {
  UT_SERVICES="svc_a:5433:15 svc_b:5434:15 svc_c:5435:15" ut_build
  export STUB_FAIL_PORTS=5434
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "[svc_b] pg_basebackup failed; nothing promoted"
  assert_output --partial "1 service(s) failed"
  run promoted svc_a
  assert_equal "${#lines[@]}" 1
  run promoted svc_c
  assert_equal "${#lines[@]}" 1
  run promoted svc_b
  assert_output ''
  # svc_b was not retried in place of anything and nothing of it is left behind.
  run find "${BASE_DIR}" -mindepth 1 -maxdepth 1 -name '*svc_b*'
  assert_output ''
  assert_equal "$(stub_count pg_verifybackup-15 'svc_b')" 0
}

@test "pg_verifybackup failing: nothing is promoted, the temp dirs stay for inspection, exit 1" {
  export STUB_VERIFY_RC=1
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "[svc_a] pg_verifybackup failed"
  assert_output --partial "[svc_b] pg_verifybackup failed"
  assert_output --partial "2 service(s) failed"
  run promoted svc_a
  assert_output ''
  run promoted svc_b
  assert_output ''
  run find "${BASE_DIR}" -mindepth 1 -maxdepth 1 -name '.tmp_*'
  assert_equal "${#lines[@]}" 2
}

@test "unmounted backup disk (findmnt prints nothing): refuses, writes nothing, runs no backup" {
  ut_unmount "${BACKUP_MOUNT}"
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "${BACKUP_MOUNT} is not a mounted filesystem; refusing to write to the root disk"
  run find "${BACKUP_MOUNT}" -mindepth 1
  assert_output ''
  assert_equal "$(stub_count pg_basebackup-15)" 0
  assert [ ! -e "${LOCK_FILE}" ]
  # findmnt was asked about the mount point itself.
  assert_equal "$(stub_count findmnt " --mountpoint ${BACKUP_MOUNT}$")" 1
}

@test "automount point whose disk is not mounted (findmnt prints only autofs): refuses, writes nothing" {
  ut_unmount "${BACKUP_MOUNT}"
  ut_mount "${BACKUP_MOUNT}" autofs
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "is not a mounted filesystem"
  run find "${BACKUP_MOUNT}" -mindepth 1
  assert_output ''
  assert_equal "$(stub_count pg_basebackup-15)" 0
}

@test "automount point with its disk mounted on it (autofs and ext4) counts as mounted" {
  ut_mount "${BACKUP_MOUNT}" autofs
  run bash "${BACKUP_SCRIPT}"
  assert_success
  assert_equal "$(stub_count pg_basebackup-15)" 2
}

@test "lock held by another run: exits 75 at once and writes nothing; runs again once released" {
  ut_hold_lock "${LOCK_FILE}"
  run bash "${BACKUP_SCRIPT}"
  assert_failure 75
  assert_output --partial "another run holds ${LOCK_FILE}"
  assert_equal "$(stub_count pg_basebackup-15)" 0
  assert [ ! -e "${ARTIFACTS}" ]

  ut_release_lock
  run bash "${BACKUP_SCRIPT}"
  assert_success
  assert_equal "$(stub_count pg_basebackup-15)" 2
}

@test "the private run dir a killed run left behind (with its pgpass) is removed by the next run; a live process's is kept" {
  local tmp="${BATS_TEST_TMPDIR}/tmp"
  local dead
  # A pid that is gone: a process that has ended.
  bash -c 'exit 0' &
  dead="$!"
  wait "${dead}"
  mkdir -p "${tmp}/pgb-backup-alpha.KILLED01" "${tmp}/pgb-backup-alpha.${dead}.KILLED02" \
    "${tmp}/pgb-backup-alpha.$$.LIVE0001" "${tmp}/pgb-backup-beta.OTHER001"
  printf '*:*:*:repl:secret\n' >"${tmp}/pgb-backup-alpha.${dead}.KILLED02/pgpass"
  TMPDIR="${tmp}" run bash "${BACKUP_SCRIPT}"
  assert_success
  assert [ ! -e "${tmp}/pgb-backup-alpha.KILLED01" ]
  assert [ ! -e "${tmp}/pgb-backup-alpha.${dead}.KILLED02" ]
  # A live process's run dir (another config's run of the same server name) is kept.
  assert [ -d "${tmp}/pgb-backup-alpha.$$.LIVE0001" ]
  # Another server's run dir is not this run's business.
  assert [ -d "${tmp}/pgb-backup-beta.OTHER001" ]
  # This run removed its own dir too.
  run find "${tmp}" -maxdepth 1 -name 'pgb-backup-alpha.*' -not -name "pgb-backup-alpha.$$.*"
  assert_output ''
}

@test "stale .tmp_ dirs of an interrupted run are removed; promoted backups are not" {
  mkdir -p "${BASE_DIR}/.tmp_svc_a_2020-01-01T00_00_00Z/base" "${BASE_DIR}/.tmp_svc_b_2020-01-01T00_00_00Z"
  printf 'partial\n' >"${BASE_DIR}/.tmp_svc_a_2020-01-01T00_00_00Z/base/1"
  local kept
  kept="$(old_backup svc_a '-1 day')"
  run bash "${BACKUP_SCRIPT}"
  assert_success
  assert_output --partial "removing stale temp dir of an interrupted run: ${BASE_DIR}/.tmp_svc_a_2020-01-01T00_00_00Z"
  assert_output --partial "removing stale temp dir of an interrupted run: ${BASE_DIR}/.tmp_svc_b_2020-01-01T00_00_00Z"
  run find "${BASE_DIR}" -mindepth 1 -maxdepth 1 -name '.tmp_*'
  assert_output ''
  assert [ -d "${BASE_DIR}/${kept}" ]
}

@test "retention: backups older than rawDays are pruned, younger ones and other services' are kept" {
  local a10 a4 a2 b10
  a10="$(old_backup svc_a '-10 days')"
  a4="$(old_backup svc_a '-4 days')"
  a2="$(old_backup svc_a '-2 days')"
  b10="$(old_backup svc_b '-10 days')"
  run bash "${BACKUP_SCRIPT}"
  assert_success
  assert_output --partial "[svc_a] pruned raw base backup older than 3 day(s): ${a10}"
  assert_output --partial "[svc_a] pruned raw base backup older than 3 day(s): ${a4}"
  assert [ ! -e "${BASE_DIR}/${a10}" ]
  assert [ ! -e "${BASE_DIR}/${a4}" ]
  assert [ -d "${BASE_DIR}/${a2}" ]
  assert [ ! -e "${BASE_DIR}/${b10}" ]
  run promoted svc_a
  assert_equal "${#lines[@]}" 2
  assert_equal "${lines[0]}" "${a2}"
  run promoted svc_b
  assert_equal "${#lines[@]}" 1
}

@test "retention: the newest backup of a service is never pruned, however old" {
  local a30 a20 b5
  a30="$(old_backup svc_a '-30 days')"
  a20="$(old_backup svc_a '-20 days')"
  b5="$(old_backup svc_b '-5 days')"
  export STUB_FAIL_PORTS="5433 5434"
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert [ ! -e "${BASE_DIR}/${a30}" ]
  assert [ -d "${BASE_DIR}/${a20}" ]
  assert [ -d "${BASE_DIR}/${b5}" ]
  run promoted svc_a
  assert_output "${a20}"
}

@test "retention: unparseable names are kept and never hide the newest good backup" {
  local a30 a20
  a30="$(old_backup svc_a '-30 days')"
  a20="$(old_backup svc_a '-20 days')"
  # Sorts after every date stamp, and before: neither may count as the newest backup.
  mkdir -p "${BASE_DIR}/svc_a_basebackup_manual-copy" "${BASE_DIR}/svc_a_basebackup_2019-bad"
  export STUB_FAIL_PORTS="5433"
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "[svc_a] cannot read the date of svc_a_basebackup_manual-copy; keeping it"
  assert_output --partial "[svc_a] cannot read the date of svc_a_basebackup_2019-bad; keeping it"
  assert [ -d "${BASE_DIR}/svc_a_basebackup_manual-copy" ]
  assert [ -d "${BASE_DIR}/svc_a_basebackup_2019-bad" ]
  assert [ -d "${BASE_DIR}/${a20}" ]
  assert [ ! -e "${BASE_DIR}/${a30}" ]
}

@test "retention: rawDays 0 keeps only the newest backup of each service" {
  UT_RAW_DAYS=0 ut_build
  local a1 a2
  a1="$(old_backup svc_a '-2 hours')"
  a2="$(old_backup svc_a '-1 minute')"
  run bash "${BACKUP_SCRIPT}"
  assert_success
  assert [ ! -e "${BASE_DIR}/${a1}" ]
  assert [ ! -e "${BASE_DIR}/${a2}" ]
  run promoted svc_a
  assert_equal "${#lines[@]}" 1
  assert [ "${lines[0]}" \> "${a2}" ]
  run promoted svc_b
  assert_equal "${#lines[@]}" 1
}

@test "WAL pruning keeps segments from the oldest retained backup's START WAL segment on, and every .history" {
  local wal="${WAL_DIR}/svc_a" f
  old_backup svc_a '-10 days' 000000010000000000000008 >/dev/null
  old_backup svc_a '-2 days' 00000001000000000000000C >/dev/null
  mkdir -p "${wal}" "${WAL_DIR}/svc_b"
  for f in 000000010000000000000008 00000001000000000000000A 00000001000000000000000B \
    00000001000000000000000C 00000001000000000000000D 00000001000000000000000E.partial \
    00000001000000000000000B.partial 00000001.history 00000002.history; do
    printf 'x\n' >"${wal}/${f}"
  done
  printf 'x\n' >"${WAL_DIR}/svc_b/000000010000000000000001"
  run bash "${BACKUP_SCRIPT}"
  assert_success
  assert_output --partial "[svc_a] WAL kept from 00000001000000000000000C"
  run bash -c 'cd "$1" && ls' _ "${wal}"
  assert_equal "$(printf '%s\n' "${lines[@]}")" "$(printf '%s\n' 00000001.history 00000001000000000000000C \
    00000001000000000000000D 00000001000000000000000E.partial 00000002.history)"
  # svc_b's only promoted backup (this run's) starts at the stub's segment 10: 01 goes.
  assert [ ! -e "${WAL_DIR}/svc_b/000000010000000000000001" ]
}

@test "WAL is left alone when the oldest backup's start segment cannot be read" {
  local wal="${WAL_DIR}/svc_a" oldest
  oldest="$(old_backup svc_a '-1 day')"
  rm -f -- "${BASE_DIR}/${oldest}/backup_label"
  mkdir -p "${wal}"
  printf 'x\n' >"${wal}/000000010000000000000001"
  run bash "${BACKUP_SCRIPT}"
  assert_success
  assert_output --partial "[svc_a] no start segment in ${oldest}/backup_label; WAL not pruned"
  assert [ -f "${wal}/000000010000000000000001" ]
}

@test "secret file missing: refused before any backup" {
  rm -f -- "${REPL_PASS_FILE}"
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "secret file missing: ${REPL_PASS_FILE}"
  assert_equal "$(stub_count pg_basebackup-15)" 0
  assert [ ! -e "${BASE_DIR}" ]
}

@test "secret file empty: refused before any backup" {
  : >"${REPL_PASS_FILE}"
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "secret file is empty: ${REPL_PASS_FILE}"
  assert_equal "$(stub_count pg_basebackup-15)" 0
}

@test "secret file still holding the placeholder: refused before any backup" {
  ut_secret "${REPL_PASS_FILE}" 'REPLACE_WITH_THE_REPLICATION_PASSWORD'
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "secret file still holds the placeholder: ${REPL_PASS_FILE}"
  assert_equal "$(stub_count pg_basebackup-15)" 0
}

@test "secret file readable by others (0644): refused before any backup; 0640 is accepted" {
  chmod 0644 "${REPL_PASS_FILE}"
  run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "secret file is readable or writable by others (mode 644"
  assert_equal "$(stub_count pg_basebackup-15)" 0

  chmod 0640 "${REPL_PASS_FILE}"
  run bash "${BACKUP_SCRIPT}"
  assert_success
}

@test "parallel jobs are bounded by parallelJobs" {
  UT_SERVICES="svc_a:5433:15 svc_b:5434:15 svc_c:5435:15 svc_d:5436:15" UT_PARALLEL=2 ut_build
  export STUB_SLEEP=0.3
  run bash "${BACKUP_SCRIPT}"
  assert_success
  local ev running=0 max=0
  while read -r ev; do
    if [[ "${ev}" == "+" ]]; then running=$((running + 1)); else running=$((running - 1)); fi
    (( running > max )) && max="${running}"
  done <"${STUB_STATE}/events"
  assert_equal "${max}" 2
  assert_equal "$(grep -c '+' "${STUB_STATE}/events")" 4
  for name in svc_a svc_b svc_c svc_d; do
    run promoted "${name}"
    assert_equal "${#lines[@]}" 1
  done
}

@test "functions are callable after sourcing: main does not run" {
  old_backup svc_a '-1 day' 0000000100000000000000AB >/dev/null
  run ut_call "${BACKUP_SCRIPT}" list_backups svc_a
  assert_success
  assert_equal "${#lines[@]}" 1
  run ut_call "${BACKUP_SCRIPT}" backup_start_segment "${BASE_DIR}/${lines[0]}"
  assert_output 0000000100000000000000AB
  assert_equal "$(stub_count pg_basebackup-15)" 0
}

# raw_night SPEC: one night's pg_backup_all.sh run with the data files of SPEC (FILE:CHECKSUM:CONTENT
# words), a second later than the night before (backup names carry the UTC second).
raw_night() {
  local spec file sum content
  for spec in "$@"; do
    IFS=: read -r file sum content <<<"${spec}"
    printf '%s\t%s\t%s\n' "${file}" "${sum}" "${content}"
  done >"${UT_ROOT}/stub-data"
  sleep 1
  STUB_DATA="${UT_ROOT}/stub-data" run bash "${BACKUP_SCRIPT}"
  assert_success
}
inode_of() { stat -c %i "$1"; }

@test "rawReuse link (default): unchanged files (same path, size and SHA-256 in both manifests) are hard links to the previous backup; changed or new files are copies" {
  UT_SERVICES="svc_a:5433:15" ut_build
  raw_night base/1/100:aaaa:cold base/1/200:bbbb:hot base/1/300:cccc:same-sum global/1262:dddd:catalog
  raw_night base/1/100:aaaa:cold base/1/200:bbb2:HOT base/1/300:cccc:same-sum-longer global/1262:dddd:catalog base/1/400:eeee:new
  assert_output --partial "[svc_a] 2 unchanged file(s) (0 MiB) hard-linked to svc_a_basebackup_"
  # The manifests carry SHA-256 checksums: an equal one is what lets a file be shared unread.
  assert_equal "$(stub_count pg_basebackup-15 -- '--manifest-checksums=SHA256')" 2
  run promoted svc_a
  assert_equal "${#lines[@]}" 2
  local old="${BASE_DIR}/${lines[0]}" new="${BASE_DIR}/${lines[1]}"
  # Same path, size and checksum: one file under both names.
  assert_equal "$(inode_of "${new}/base/1/100")" "$(inode_of "${old}/base/1/100")"
  assert_equal "$(inode_of "${new}/global/1262")" "$(inode_of "${old}/global/1262")"
  # Changed checksum; the same checksum at another size; new: own copies.
  assert_not_equal "$(inode_of "${new}/base/1/200")" "$(inode_of "${old}/base/1/200")"
  assert_not_equal "$(inode_of "${new}/base/1/300")" "$(inode_of "${old}/base/1/300")"
  assert_equal "$(cat "${new}/base/1/300")" same-sum-longer
  assert_equal "$(cat "${old}/base/1/300")" same-sum
  assert_equal "$(cat "${new}/base/1/200")" HOT
  assert_equal "$(cat "${old}/base/1/200")" hot
  # The manifests and labels always differ and stay apart.
  assert_not_equal "$(inode_of "${new}/backup_manifest")" "$(inode_of "${old}/backup_manifest")"
  assert_not_equal "$(inode_of "${new}/backup_label")" "$(inode_of "${old}/backup_label")"
  # Night 1 (nothing to share): one full pass; night 2: pass 1 and pass 2 (reusedChecksums skip).
  assert_equal "$(stub_count pg_verifybackup-15)" 3
  run find "${BASE_DIR}" -mindepth 1 -maxdepth 1 -name '.tmp_*'
  assert_output ''

  # A third night links to the second (whose unchanged files are the first's): one inode, three
  # names, and a fourth in the Borg stage of the newest backup.
  raw_night base/1/100:aaaa:cold base/1/200:bbb3:HOT3 base/1/300:cccc:same-sum-longer global/1262:dddd:catalog base/1/400:eeee:new
  run promoted svc_a
  assert_equal "$(stat -c %h "${BASE_DIR}/${lines[2]}/base/1/100")" 4
  assert_equal "$(inode_of "${BASE_DIR}/${lines[2]}/base/1/300")" "$(inode_of "${new}/base/1/300")"
  # Deleting the oldest (retention) leaves the others whole.
  rm -rf -- "${old}"
  assert_equal "$(cat "${new}/base/1/100")" cold
  assert_equal "$(cat "${BASE_DIR}/${lines[2]}/base/1/100")" cold
  assert_equal "$(stat -c %h "${new}/base/1/100")" 3
}

@test "rawReuse copy: CRC32C manifests, every backup keeps its own copies" {
  UT_SERVICES="svc_a:5433:15" UT_RAW_REUSE=copy ut_build
  raw_night base/1/100:aaaa:cold
  raw_night base/1/100:aaaa:cold
  refute_output --partial 'hard-linked'
  assert_equal "$(stub_count pg_basebackup-15 -- '--manifest-checksums=CRC32C')" 2
  run promoted svc_a
  assert_not_equal "$(inode_of "${BASE_DIR}/${lines[1]}/base/1/100")" "$(inode_of "${BASE_DIR}/${lines[0]}/base/1/100")"
  assert_equal "$(stat -c %h "${BASE_DIR}/${lines[0]}/base/1/100")" 1
}

@test "rawReuse link after copy: a previous backup with CRC32C checksums shares nothing (a CRC is no identity)" {
  UT_SERVICES="svc_a:5433:15" UT_RAW_REUSE=copy ut_build
  raw_night base/1/100:aaaa:cold
  UT_SERVICES="svc_a:5433:15" ut_build
  raw_night base/1/100:aaaa:cold
  assert_output --partial "[svc_a] 0 unchanged file(s) (0 MiB) hard-linked to svc_a_basebackup_"
  assert_output --partial "all 1 base backup(s) verified and promoted"
  run promoted svc_a
  assert_equal "${#lines[@]}" 2
  assert_not_equal "$(inode_of "${BASE_DIR}/${lines[1]}/base/1/100")" "$(inode_of "${BASE_DIR}/${lines[0]}/base/1/100")"
  # The next night shares with the SHA-256 backup.
  raw_night base/1/100:aaaa:cold
  run promoted svc_a
  assert_equal "$(inode_of "${BASE_DIR}/${lines[2]}/base/1/100")" "$(inode_of "${BASE_DIR}/${lines[1]}/base/1/100")"
}

# newest_a, oldest_a: the newest and oldest promoted backups of svc_a; tmp_of DIR: the temp dir
# a backup was made in.
newest_a() { printf '%s\n' "${BASE_DIR}/$(promoted svc_a | tail -n 1)"; }
oldest_a() { printf '%s\n' "${BASE_DIR}/$(promoted svc_a | head -n 1)"; }
tmp_of() { printf '%s\n' "${BASE_DIR}/.tmp_svc_a_${1##*_basebackup_}"; }

@test "reusedChecksums skip (default): pass 1 (-s) before the links, pass 2 (-n) after them skipping what was linked, whole directories once" {
  UT_SERVICES="svc_a:5433:15" ut_build
  export STUB_VERIFY_PROBE=base/1/100
  # base/5: every file linked or empty; global: every file linked; base/1: one changed file.
  local files=(base/1/100:aaaa:cold base/1/300:0: global/1262:dddd:catalog global/1263:dddf:catalog2
    base/5/1:1111:x base/5/2:2222:y base/5/3:0:)
  raw_night base/1/200:bbbb:hot "${files[@]}"
  refute_output --partial "checksumming the files not linked"
  raw_night base/1/200:bbb2:HOT "${files[@]}"
  assert_output --partial "[svc_a] 5 unchanged file(s) (0 MiB) hard-linked"
  assert_output --partial "[svc_a] checksumming the files not linked: pg_verifybackup -n -q, 3 path(s) skipped (-i)"
  local new old
  new="$(newest_a)" old="$(oldest_a)"
  assert_equal "$(stat -c %i "${new}/base/5/1")" "$(stat -c %i "${old}/base/5/1")"
  # Night 1 had nothing to share: one full pass. Night 2: pass 1 with checksums skipped, then
  # pass 2 without the WAL, skipping the linked file of base/1 and the directories whose every
  # file is linked (or empty), in manifest order; the changed and the empty file of base/1 are
  # checked.
  run stub_calls pg_verifybackup-15
  assert_equal "${#lines[@]}" 3
  assert_equal "${lines[0]}" "-q $(tmp_of "${old}")"
  assert_equal "${lines[1]}" "-s -q $(tmp_of "${new}")"
  assert_equal "${lines[2]}" "-n -q -i base/1/100 -i global -i base/5 $(tmp_of "${new}")"
  # Pass 1 saw tonight's own copy of base/1/100, pass 2 the previous backup's (its own name, the
  # Borg stage's and tonight's).
  assert_equal "$(cat "${STUB_STATE}/verify-probe")" "$(printf '%s\n' '-q 1' '-s 1' '-n 3')"
}

@test "reusedChecksums check: one full pass before the links, every night; the files are still linked" {
  UT_SERVICES="svc_a:5433:15" UT_REUSED_CHECKSUMS=check ut_build
  export STUB_VERIFY_PROBE=base/1/100
  raw_night base/1/100:aaaa:cold base/1/200:bbbb:hot
  raw_night base/1/100:aaaa:cold base/1/200:bbb2:HOT
  assert_output --partial "[svc_a] 1 unchanged file(s) (0 MiB) hard-linked"
  refute_output --partial "checksumming the files not linked"
  local new old
  new="$(newest_a)" old="$(oldest_a)"
  assert_equal "$(stat -c %i "${new}/base/1/100")" "$(stat -c %i "${old}/base/1/100")"
  run stub_calls pg_verifybackup-15
  assert_equal "${lines[*]}" "-q $(tmp_of "${old}") -q $(tmp_of "${new}")"
  # Night 2's pass read tonight's own copy, before it was linked.
  assert_equal "$(cat "${STUB_STATE}/verify-probe")" "$(printf '%s\n' '-q 1' '-q 1')"
}

@test "reusedChecksums skip: more than 100000 bytes of -i arguments: pass 2 checksums every file instead, and says so" {
  UT_SERVICES="svc_a:5433:15" ut_build
  local n long night
  printf -v long '%0240d' 0
  for night in 1 2; do
    {
      printf 'base/1/changed\t%s\tnight%s\n' "${night}" "${night}"
      # 420 linked files of 250-byte paths in one directory that is not linked whole.
      for n in {100..519}; do
        printf 'base/1/%s%s\t%s\tcold\n' "${long}" "${n}" "${n}"
      done
    } >"${UT_ROOT}/stub-data"
    sleep 1
    STUB_DATA="${UT_ROOT}/stub-data" run bash "${BACKUP_SCRIPT}"
    assert_success
  done
  assert_output --partial "[svc_a] 420 unchanged file(s) (0 MiB) hard-linked"
  assert_output --partial "[svc_a] the 420 path(s) linked take 106680 bytes of arguments (over 100000): checksumming every file"
  assert_output --partial "[svc_a] checksumming the files not linked: pg_verifybackup -n -q, 0 path(s) skipped (-i)"
  run stub_calls pg_verifybackup-15
  assert_equal "${#lines[@]}" 3
  assert_equal "${lines[2]}" "-n -q $(tmp_of "$(newest_a)")"
  assert_equal "$(stat -c %h "$(newest_a)/base/1/${long}100")" 3
}

@test "reusedChecksums skip: a failing pass 1 links nothing, a failing pass 2 promotes nothing; the log says which pass, the temp dir stays" {
  UT_SERVICES="svc_a:5433:15" ut_build
  raw_night base/1/100:aaaa:cold base/1/200:bbbb:hot
  local first tmp
  first="$(newest_a)"
  sleep 1
  STUB_DATA="${UT_ROOT}/stub-data" STUB_VERIFY_FAIL='^-s ' run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "[svc_a] pg_verifybackup: error: checksum mismatch"
  assert_output --partial "[svc_a] pg_verifybackup pass 1 (-s: manifest, every file and its size, WAL) failed; left for inspection until the next run: ${BASE_DIR}/.tmp_svc_a_"
  assert_output --partial "1 service(s) failed"
  refute_output --partial "hard-linked"
  assert_equal "$(promoted svc_a)" "${first##*/}"
  tmp="$(find "${BASE_DIR}" -mindepth 1 -maxdepth 1 -name '.tmp_svc_a_*')"
  assert [ -d "${tmp}" ]
  # Nothing of the previous backup was linked into it, and pass 2 never ran.
  assert_equal "$(stat -c %h "${tmp}/base/1/100")" 1
  assert_equal "$(stub_count pg_verifybackup-15 '^-n ')" 0

  sleep 1
  STUB_DATA="${UT_ROOT}/stub-data" STUB_VERIFY_FAIL='^-n ' run bash "${BACKUP_SCRIPT}"
  assert_failure 1
  assert_output --partial "removing stale temp dir of an interrupted run: ${tmp}"
  assert_output --partial "[svc_a] pg_verifybackup pass 2 (-n: checksums of the files not linked) failed; left for inspection until the next run"
  assert_output --partial "1 service(s) failed"
  assert_equal "$(promoted svc_a)" "${first##*/}"
  run find "${BASE_DIR}" -mindepth 1 -maxdepth 1 -name '.tmp_svc_a_*'
  assert_equal "${#lines[@]}" 1
  # The previous backup is untouched by the failed night (its file: its own name, the Borg
  # stage's, and the failed temp dir's).
  assert_equal "$(cat "${first}/base/1/100")" cold
  assert_equal "$(stat -c %h "${first}/base/1/100")" 3
}

@test "borg.stablePath: the stage holds hard links of each service's newest backup and its name, rebuilt whole every night" {
  local stage="${BACKUP_MOUNT}/.pgb-borg-stage"
  mkdir -p "${stage}/gone_service"
  raw_night base/1/100:aaaa:cold
  raw_night base/1/100:aaaa:cold2
  local name newest
  for name in svc_a svc_b; do
    newest="$(promoted "${name}" | tail -n 1)"
    assert_equal "$(stat -c %i "${stage}/${name}/base/1/100")" "$(stat -c %i "${BASE_DIR}/${newest}/base/1/100")"
    assert_equal "$(stat -c %i "${stage}/${name}/backup_manifest")" "$(stat -c %i "${BASE_DIR}/${newest}/backup_manifest")"
    assert_equal "$(cat "${stage}/${name}/base/1/100")" cold2
    # Its name beside it: a restore from Borg extracts the newest backup by these paths.
    assert_equal "$(cat "${stage}/${name}.name")" "${newest}"
  done
  assert [ ! -e "${stage}/gone_service" ]
  assert [ ! -e "${stage}.next" ]
  assert_equal "$(stat -c %a "${stage}")" 700
}
