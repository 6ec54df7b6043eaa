#!/usr/bin/env bats
# Unit suite of the generated borg_pg_artifacts.sh: borg and findmnt are PATH stubs; df, flock
# and the rest are real. The borg stub keeps the external repo's archive list in a file, so the
# make-room loop deletes real entries, and reads the passphrase through BORG_PASSCOMMAND.

# Stub knobs are exported per test on purpose: each test runs in its own process.
# shellcheck disable=SC2030,SC2031

load helpers

setup_file() {
  ut_setup_file
}

teardown_file() {
  ut_teardown_file
}

# The borg stub. Knobs (environment):
#   BORG_RC_<SUBCOMMAND>_<PRIMARY|EXTERNAL>   exit status (default 0), e.g. BORG_RC_CREATE_PRIMARY=2
#   BORG_MSG_<SUBCOMMAND>_<PRIMARY|EXTERNAL>  what it prints on stderr
#   BORG_EXT_FULL   N or "always": the first N creates on the external repo fail for space (rc 2)
# STUB_STATE/ext_archives: the external repo's archives, oldest first (list, delete and create use it).
make_borg_stub() {
  # shellcheck disable=SC2016
  make_stub "${STUB_BIN}/borg" '
sub="$1"
shift
target="" archive=""
for a in "$@"; do
  case "${a}" in
    *::*) target="${a%%::*}"; archive="${a#*::}"; break ;;
  esac
done
if [[ -z "${target}" ]]; then
  if [[ "${sub}" == config ]]; then target="$1"; else target="${!#}"; fi
fi
which=PRIMARY
[[ "${target}" == "${EXT_REPO}" ]] && which=EXTERNAL
if [[ -n "${BORG_PASSCOMMAND:-}" ]]; then
  ${BORG_PASSCOMMAND} >"${STUB_LOG}/borg.passphrase"
fi
archives="${STUB_STATE}/ext_archives"
if [[ "${sub}" == create && "${which}" == EXTERNAL && -n "${BORG_EXT_FULL:-}" ]]; then
  n="$(cat "${STUB_STATE}/full_count" 2>/dev/null || printf 0)"
  if [[ "${BORG_EXT_FULL}" == always ]] || (( n < BORG_EXT_FULL )); then
    printf "%s\n" "$((n + 1))" >"${STUB_STATE}/full_count"
    printf "Insufficient free space to complete transaction (required: 629145600 B, available: 0 B).\n" >&2
    exit 2
  fi
fi
rc_var="BORG_RC_${sub^^}_${which}"
msg_var="BORG_MSG_${sub^^}_${which}"
[[ -z "${!msg_var:-}" ]] || printf "%s\n" "${!msg_var}" >&2
rc="${!rc_var:-0}"
(( rc < 2 )) || exit "${rc}"
case "${sub}:${which}" in
  create:*)
    printf "Archive name: %s\n" "${archive}"
    if [[ "${which}" == EXTERNAL ]]; then printf "%s\n" "${archive}" >>"${archives}"; fi
    ;;
  list:EXTERNAL)
    if [[ " $* " == *" --first 1 "* ]]; then head -n 1 "${archives}"; else cat "${archives}"; fi
    ;;
  delete:EXTERNAL)
    grep -qxF -- "${archive}" "${archives}" || { printf "Archive %s does not exist\n" "${archive}" >&2; exit 2; }
    grep -vxF -- "${archive}" "${archives}" >"${archives}.new" || true
    mv -- "${archives}.new" "${archives}"
    ;;
esac
exit "${rc}"'
}

setup() {
  ut_setup
  ut_build
  make_findmnt_stub
  make_borg_stub
  ut_mount "${BACKUP_MOUNT}"
  ut_mount "${EXT_MOUNT}"
  mkdir -p "${BASE_DIR}" "${PRIMARY_REPO}" "${EXT_REPO}" "${CONFIG_ARTIFACTS}"
  : >"${PRIMARY_REPO}/config"
  : >"${EXT_REPO}/config"
  : >"${STUB_STATE}/ext_archives"
  ut_secret "${PASS_FILE}" 'BORG_PASSPHRASE=borg-S3cret-pass'
}

teardown() {
  ut_teardown
}

# ext_archives N: N old archives in the external repo, oldest first; prints their names.
ext_archives() {
  local i
  for ((i = 1; i <= $1; i++)); do
    printf '%s2024-01-%02dT02:00:00Z\n' "${ARCHIVE_PREFIX}" "${i}"
  done | tee "${STUB_STATE}/ext_archives"
}

# ext_calls: the borg calls on the external repo, reduced to "subcommand", "config VALUE" or
# "delete ARCHIVE".
ext_calls() {
  local sub rest
  stub_calls borg | grep -F -- "${EXT_REPO}" | while read -r sub rest; do
    case "${sub}" in
      config) printf 'config %s\n' "${rest##* }" ;;
      delete) printf 'delete %s\n' "${rest##*::}" ;;
      *) printf '%s\n' "${sub}" ;;
    esac
  done
}

@test "success: create, prune and compact on both repos (no check: that is the weekly unit's), one archive name" {
  run bash "${BORG_SCRIPT}"
  assert_success
  assert_output --partial "primary repository done: ${ARCHIVE_PREFIX}"
  assert_output --partial "external repository done"

  local repo
  for repo in "${PRIMARY_REPO}" "${EXT_REPO}"; do
    run bash -c 'grep -E -- " ${1}(::| *$)" "$2" | cut -d" " -f1' _ "${repo}" "${STUB_LOG}/borg.log"
    assert_equal "$(printf '%s ' "${lines[@]}")" "create prune compact "
  done
  # No stage yet (pg_backup_all.sh makes it): the artifacts and settings only.
  run stub_count borg "^create --stats --lock-wait 30 --compression zstd,3 --chunker-params fixed,8192 --files-cache mtime,size,inode --exclude ${ARTIFACTS}/basebackups/\.tmp_\* ${PRIMARY_REPO}::${ARCHIVE_PREFIX}[0-9T:-]+Z ${ARTIFACTS} ${CONFIG_ARTIFACTS}$"
  assert_output 1
  run stub_count borg "^prune --list --lock-wait 30 --glob-archives ${ARCHIVE_PREFIX}\* --keep-daily 7 --keep-weekly 4 --keep-monthly 6 ${EXT_REPO}$"
  assert_output 1
  # The same archive name in both repos.
  run bash -c 'grep "^create " "$1" | sed "s/.*::\([^ ]*\) .*/\1/" | sort -u | wc -l' _ "${STUB_LOG}/borg.log"
  assert_output 1
  # Nothing full: the reserve is never touched.
  assert_equal "$(stub_count borg '^config ')" 0
}

@test "the passphrase reaches borg only through BORG_PASSCOMMAND, never argv or the log" {
  run bash "${BORG_SCRIPT}"
  assert_success
  assert_equal "$(cat "${STUB_LOG}/borg.passphrase")" 'borg-S3cret-pass'
  run grep -F 'S3cret' "${STUB_LOG}/borg.log"
  assert_failure
  run bash "${BORG_SCRIPT}"
  refute_output --partial 'S3cret'
}

@test "borg warning (rc 1): logged as a warning with borg's words, the run goes on and exits 0" {
  export BORG_RC_CREATE_PRIMARY=1
  export BORG_MSG_CREATE_PRIMARY="${ARTIFACTS}/wal/x: file changed while we backed it up"
  run bash "${BORG_SCRIPT}"
  assert_success
  assert_output --regexp "\[WARN\]   borg: ${ARTIFACTS}/wal/x: file changed while we backed it up"
  assert_output --regexp "\[WARN\] created ${PRIMARY_REPO}::${ARCHIVE_PREFIX}[^ ]+: finished with warnings \(borg rc 1\)"
  refute_output --partial '[ERR ]'
  assert_output --partial "primary repository done"
  assert_equal "$(stub_count borg "^(prune|compact) .*${PRIMARY_REPO}$")" 2
}

@test "borg error (rc 2): logged as an error, the primary stops there, exit 1; the external copy is still made" {
  export BORG_RC_CREATE_PRIMARY=2
  export BORG_MSG_CREATE_PRIMARY="Failed to create/acquire the lock ${PRIMARY_REPO}/lock.exclusive (timeout)."
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --regexp "\[ERR \]   borg: Failed to create/acquire the lock"
  assert_output --regexp "\[ERR \] created ${PRIMARY_REPO}::${ARCHIVE_PREFIX}[^ ]+: failed \(borg rc 2\)"
  assert_output --partial "primary repository FAILED"
  refute_output --partial "finished with warnings"
  assert_equal "$(stub_count borg "^(prune|compact) .*${PRIMARY_REPO}$")" 0
  # Primary failing still attempts, and makes, the external copy.
  assert_output --partial "external repository done"
  assert_equal "$(ext_calls | tr '\n' ' ')" "create prune compact "
}

@test "check: borg check of both repositories and nothing else; the nightly run never checks" {
  run bash "${BORG_SCRIPT}"
  assert_success
  assert_equal "$(stub_count borg '^check ')" 0

  : >"${STUB_LOG}/borg.log"
  run bash "${BORG_SCRIPT}" check
  assert_success
  assert_equal "$(stub_calls borg | tr '\n' '|')" "check --lock-wait 30 ${PRIMARY_REPO}|check --lock-wait 30 ${EXT_REPO}|"
  assert_output --partial "checked ${PRIMARY_REPO}"
  assert_output --partial "checked ${EXT_REPO}"
  assert_output --partial "borg check complete (all)"

  : >"${STUB_LOG}/borg.log"
  run bash "${BORG_SCRIPT}" check external
  assert_success
  assert_equal "$(stub_calls borg)" "check --lock-wait 30 ${EXT_REPO}"

  run bash "${BORG_SCRIPT}" check primary extra
  assert_failure 2
  assert_output --partial 'usage:'
}

@test "check: an error (rc 2) on one repository fails the run, the other is still checked; a warning passes" {
  export BORG_RC_CHECK_PRIMARY=2 BORG_MSG_CHECK_PRIMARY="Index object count mismatch."
  run bash "${BORG_SCRIPT}" check
  assert_failure 1
  assert_output --regexp "\[ERR \]   borg: Index object count mismatch\."
  assert_output --regexp "\[ERR \] checked ${PRIMARY_REPO}: failed \(borg rc 2\)"
  assert_output --partial "[ OK ] checked ${EXT_REPO}"
  assert_output --partial "borg check FAILED"

  export BORG_RC_CHECK_PRIMARY=0 BORG_RC_CHECK_EXTERNAL=1
  run bash "${BORG_SCRIPT}" check
  assert_success
  assert_output --regexp "\[WARN\] checked ${EXT_REPO}: finished with warnings \(borg rc 1\)"
}

@test "check: external drive not mounted fails loudly after checking the primary" {
  ut_unmount "${EXT_MOUNT}"
  run bash "${BORG_SCRIPT}" check
  assert_failure 1
  assert_output --partial "external drive not mounted at ${EXT_MOUNT}; external repository NOT checked"
  assert_equal "$(stub_calls borg)" "check --lock-wait 30 ${PRIMARY_REPO}"
}

@test "no external repository configured (server beta): the external copy and its check are nothing to do" {
  local beta="${BORG_SCRIPT%/alpha/*}/beta/root/usr/local/sbin/borg_pg_artifacts.sh"
  run ut_call "${beta}" backup_external "beta-pg-artifacts-2024-01-01T02:00:00Z"
  assert_success
  assert_output --partial "no external repository configured"
  run ut_call "${beta}" check_external
  assert_success
  assert_output --partial "no external repository configured"
  assert_equal "$(stub_count borg)" 0
}

@test "check: waits for a running night's lock instead of failing like a second nightly run" {
  local ready="${BATS_TEST_TMPDIR}/holder-ready" holder
  mkdir -p "${LOCK_FILE%/*}"
  # A holder that keeps the lock for 2 seconds, as a night still archiving would.
  (flock 9 && : >"${ready}" && sleep 2) 9>>"${LOCK_FILE}" &
  holder=$!
  until [[ -e "${ready}" ]]; do sleep 0.05; done
  run bash "${BORG_SCRIPT}" check
  wait "${holder}"
  assert_success
  assert_output --partial "waiting for the run holding ${LOCK_FILE} to finish"
  assert_output --partial "borg check complete (all)"
  assert_equal "$(stub_count borg '^check ')" 2
}

@test "external drive not mounted: the external copy fails loudly, the primary is done, exit 1" {
  ut_unmount "${EXT_MOUNT}"
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "[ERR ] external drive not mounted at ${EXT_MOUNT}; external copy NOT made"
  assert_output --partial "external repository FAILED"
  assert_output --partial "primary repository done"
  assert_equal "$(stub_count borg "${EXT_REPO}")" 0
  assert_equal "$(stub_count borg "^create .*${PRIMARY_REPO}::")" 1

  # An automount point whose drive is absent is not mounted either.
  ut_mount "${EXT_MOUNT}" autofs
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "external drive not mounted at ${EXT_MOUNT}"
  assert_equal "$(stub_count borg "${EXT_REPO}")" 0
}

@test "external drive full: deletes the oldest archives with the reserve lowered and restored, then succeeds" {
  local -a old
  mapfile -t old < <(ext_archives 5)
  export BORG_EXT_FULL=2
  run bash "${BORG_SCRIPT}"
  assert_success
  assert_output --partial "external drive full; making room (1/3)"
  assert_output --partial "external drive full; making room (2/3)"
  assert_output --partial "deleting the oldest external archive to make room: ${old[0]}"
  assert_output --partial "deleting the oldest external archive to make room: ${old[1]}"
  # Order of the writes: each delete inside a lowered reserve, the reserve restored before the
  # retry, then the normal prune and compact.
  assert_equal "$(ext_calls | grep -vxE 'list|compact' | tr '\n' ' ')" \
    "create config 0 delete ${old[0]} config 1048576 create config 0 delete ${old[1]} config 1048576 create prune "
  # Every delete is followed by a compact (Borg frees nothing until then) while the reserve is still lowered.
  assert_equal "$(ext_calls | grep -vx list | grep -A2 '^delete ' | grep -cx compact)" 2
  run bash -c 'grep -vx list | tr "\n" " "' <<<"$(ext_calls)"
  assert_output --regexp "delete ${old[0]} compact config 1048576 .*delete ${old[1]} compact config 1048576 .*create prune compact $"
  # The reserve calls are exactly `borg config REPO additional_free_space N`.
  assert_equal "$(stub_count borg "^config ${EXT_REPO} additional_free_space 0$")" 2
  assert_equal "$(stub_count borg "^config ${EXT_REPO} additional_free_space 1048576$")" 2
  # The two oldest are gone, the rest kept, the new archive added.
  run cat "${STUB_STATE}/ext_archives"
  assert_equal "${#lines[@]}" 4
  assert_equal "${lines[0]}" "${old[2]}"
  assert_equal "${lines[2]}" "${old[4]}"
  assert_regex "${lines[3]}" "^${ARCHIVE_PREFIX}[0-9T:-]+Z$"
}

@test "external drive full: never deletes the last archive, restores the reserve, exits 1; primary done" {
  UT_EXT_MAX_PRUNE=10 ut_build
  local -a old
  mapfile -t old < <(ext_archives 3)
  export BORG_EXT_FULL=always
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "external repo holds 1 archive; never deleting the last one"
  assert_output --partial "external repository FAILED"
  assert_output --partial "primary repository done"
  assert_equal "$(stub_count borg '^delete ')" 2
  assert_equal "$(cat "${STUB_STATE}/ext_archives")" "${old[2]}"
  assert_equal "$(ext_calls | grep '^config' | tail -n 1)" 'config 1048576'
  assert_equal "$(stub_count borg "additional_free_space 0$")" "$(stub_count borg "additional_free_space 1048576$")"
}

@test "external drive full with no archive on it (a first night on a too small drive): says the drive is too small, deletes nothing" {
  : >"${STUB_STATE}/ext_archives"
  export BORG_EXT_FULL=always
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "external drive too small for one archive: ${EXT_REPO} holds no archive to delete"
  assert_output --partial "use a larger drive or lower repos.external.reserveBytes"
  assert_output --partial "external repository FAILED"
  assert_equal "$(stub_count borg '^delete ')" 0
}

@test "external drive full: gives up after maxPruneIterations deletions, reserve restored, exit 1" {
  ext_archives 8 >/dev/null
  export BORG_EXT_FULL=always
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "external drive still full after 3 deletion(s); giving up"
  assert_equal "$(stub_count borg '^delete ')" 3
  assert_equal "$(stub_count borg "^create .*${EXT_REPO}::")" 4
  assert_equal "$(wc -l <"${STUB_STATE}/ext_archives")" 5
  assert_equal "$(ext_calls | grep '^config' | tail -n 1)" 'config 1048576'
  assert_equal "$(stub_count borg "^prune .*${EXT_REPO}$")" 0
}

@test "external drive full and the delete fails: the exit trap restores the reserve, nothing swallowed" {
  ext_archives 3 >/dev/null
  export BORG_EXT_FULL=1 BORG_RC_DELETE_EXTERNAL=2 BORG_MSG_DELETE_EXTERNAL="Repository ${EXT_REPO} is locked"
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --regexp "\[ERR \] deleted ${EXT_REPO}::[^ ]+: failed \(borg rc 2\)"
  assert_output --partial "external repository FAILED"
  assert_equal "$(ext_calls | grep -vxE 'list|compact' | tr '\n' ' ')" "create config 0 delete ${ARCHIVE_PREFIX}2024-01-01T02:00:00Z config 1048576 "
}

@test "external create failing for another reason than space: nothing deleted, exit 1" {
  ext_archives 3 >/dev/null
  export BORG_RC_CREATE_EXTERNAL=2 BORG_MSG_CREATE_EXTERNAL="passphrase supplied in BORG_PASSCOMMAND is incorrect"
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "external archive failed for a reason other than space; not deleting anything"
  assert_equal "$(stub_count borg '^(delete|config) ')" 0
  assert_equal "$(wc -l <"${STUB_STATE}/ext_archives")" 3
}

@test "low free space on the external drive is warned about with the real byte count" {
  UT_EXT_WARN_FREE=999999999999999 ut_build
  run bash "${BORG_SCRIPT}"
  assert_success
  assert_output --regexp "\[WARN\] external drive low on space: [0-9]+ bytes free at ${EXT_MOUNT}"
  refute_output --partial "could not read the free space"
}

@test "a repo that was never initialized is refused, never created; the other repo still done" {
  rm -f -- "${PRIMARY_REPO}/config"
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "not a Borg repository: ${PRIMARY_REPO} (run pgb_repo_init.sh)"
  assert_equal "$(stub_count borg "${PRIMARY_REPO}")" 0
  assert_output --partial "external repository done"
}

@test "target primary or external runs only that repo; anything else is a usage error (exit 2)" {
  run bash "${BORG_SCRIPT}" primary
  assert_success
  assert_equal "$(stub_count borg "${EXT_REPO}")" 0
  assert_equal "$(stub_count borg "${PRIMARY_REPO}")" 3

  : >"${STUB_LOG}/borg.log"
  run bash "${BORG_SCRIPT}" external
  assert_success
  assert_equal "$(stub_count borg "${PRIMARY_REPO}")" 0
  assert_equal "$(stub_count borg "${EXT_REPO}")" 3

  : >"${STUB_LOG}/borg.log"
  run bash "${BORG_SCRIPT}" everything
  assert_failure 2
  assert_output --partial 'usage:'
  assert_equal "$(stub_count borg)" 0
}

@test "unmounted backup disk: refuses, no borg call" {
  ut_unmount "${BACKUP_MOUNT}"
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "${BACKUP_MOUNT} is not a mounted filesystem; nothing to archive"
  assert_equal "$(stub_count borg)" 0
}

@test "lock held by another run: exits 75 at once, no borg call" {
  ut_hold_lock "${LOCK_FILE}"
  run bash "${BORG_SCRIPT}"
  assert_failure 75
  assert_output --partial "another run holds ${LOCK_FILE}"
  assert_equal "$(stub_count borg)" 0
}

@test "passphrase file missing: refused, no borg call" {
  rm -f -- "${PASS_FILE}"
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "secret file missing: ${PASS_FILE}"
  assert_equal "$(stub_count borg)" 0
}

@test "passphrase file empty: refused, no borg call" {
  : >"${PASS_FILE}"
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "secret file is empty: ${PASS_FILE}"
  assert_equal "$(stub_count borg)" 0
}

@test "passphrase file still holding the placeholder: refused, no borg call" {
  ut_secret "${PASS_FILE}" 'BORG_PASSPHRASE=REPLACE_WITH_YOUR_BORG_REPO_PASSPHRASE'
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "secret file still holds the placeholder: ${PASS_FILE}"
  assert_equal "$(stub_count borg)" 0
}

@test "passphrase file mode 0644: refused, no borg call" {
  chmod 0644 "${PASS_FILE}"
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "secret file is readable or writable by others (mode 644"
  assert_equal "$(stub_count borg)" 0
}

@test "passphrase file without a BORG_PASSPHRASE= line: refused, no borg call" {
  ut_secret "${PASS_FILE}" 'PASSPHRASE=borg-S3cret-pass'
  run bash "${BORG_SCRIPT}"
  assert_failure 1
  assert_output --partial "no BORG_PASSPHRASE= line in ${PASS_FILE}"
  assert_equal "$(stub_count borg)" 0
}

@test "borg.stablePath: the stage pg_backup_all.sh made is archived first, before the artifacts" {
  mkdir -p "${BACKUP_MOUNT}/.pgb-borg-stage/svc_a"
  run bash "${BORG_SCRIPT}" primary
  assert_success
  run stub_count borg "^create .* --files-cache mtime,size,inode .*${PRIMARY_REPO}::${ARCHIVE_PREFIX}[0-9T:-]+Z ${BACKUP_MOUNT}/\.pgb-borg-stage ${ARTIFACTS} ${CONFIG_ARTIFACTS}$"
  assert_output 1
}
