#!/usr/bin/env bats
# rawReuse link and borg.stablePath (issue 14) against the real programs: two PostgreSQL 15
# clusters, the backup disk as tmpfs, a real Borg repository. Three nights with churn on one
# service: the nights share every unchanged file (equal path, size and SHA-256 in both
# manifests), each backup verifies alone, retention deletes one and leaves the others whole,
# and the newest comes back whole from Borg. The tests build on each other in file order.
#
#   bats bats/integration/raw_reuse.bats

load 'helpers/load'

setup_file() {
  pgb_require_root
  pgb_ensure_pkg faketime faketime
  pgb_ensure_pkg borg borgbackup
  pgb_require_stable_borg_host_id
  export PGB_SERVICES="service_a:56001 service_b:56002"
  export PGB_RAW_DAYS=1
  pgb_server_setup
  local name
  while read -r name; do
    pgb_load_pgbench "${name}" 1
    pg_fill_random "$(pg_service_port "${name}")" probe 1
  done < <(pgb_service_names)
  pgb_mark setup: data loaded
}

setup() {
  pgb_mark "test: ${BATS_TEST_DESCRIPTION}"
}

teardown_file() {
  [[ -z "${PGB_T:-}" ]] || pgb_mark teardown
  pgb_teardown_all
}

# ---- helpers of this file ---------------------------------------------------------------------

verify_backup() {
  "${PGB_PG_BIN}/pg_verifybackup" -q "$1"
}

day() { date -u -d "+$1 days" +%F; }

# night N DAY TIME: churn service_a, then one pg_backup_all.sh run at DAY TIME (UTC, faketime).
night() {
  local port_a
  port_a="$(pg_service_port service_a)"
  pg_as_postgres "${PGB_PG_BIN}/pgbench" -n -t 200 -h "$(pg_sock_dir)" -p "${port_a}" postgres >/dev/null
  pg_psql "${port_a}" -c CHECKPOINT >/dev/null
  pgb_nightly "reuse$1" "$(day "$2") $3" none
  expect_rc 0 "${PGB_BACKUP_RC}" "${PGB_T}/logs/reuse$1.backup.log"
}

# shares_unchanged PREV NEW: every non-empty file of NEW with the same bytes at the same path in
# PREV is PREV's file (one inode), every other one a copy of its own; prints how many are shared.
shares_unchanged() {
  local prev="$1" new="$2" rel shared=0
  while IFS= read -r rel; do
    [[ "${rel}" != backup_manifest ]] || continue
    if [[ -f "${prev}/${rel}" ]] && cmp -s -- "${prev}/${rel}" "${new}/${rel}"; then
      assert_equal "${rel}: $(stat -c %i "${new}/${rel}")" "${rel}: $(stat -c %i "${prev}/${rel}")"
      shared=$((shared + 1))
    else
      assert_not_equal "${rel}: $(stat -c %i "${new}/${rel}")" "${rel}: $(stat -c %i "${prev}/${rel}" 2>/dev/null)"
    fi
  done < <(cd "${new}" && find . -type f -size +0 -printf '%P\n')
  printf '%s\n' "${shared}"
}

relpath() {
  pg_psql "$(pg_service_port "$1")" -At -c "SELECT pg_relation_filepath('$2')"
}

# script_step STEP DIR: one step of pg_backup_all.sh's backup_one for service_a, run by the
# generated script's own functions (sourced: its main guard keeps main from running), its run
# files in DIR.run: basebackup (pg_basebackup into DIR as backup_one runs it), link
# (link_unchanged: what it linked in DIR.run/linked) or pass2 (verify_unlinked).
script_step() {
  bash -c '
    source "$1"
    step="$2" dir="$3"
    RUN_DIR="${dir}.run"
    mkdir -p "${RUN_DIR}"
    for i in "${!SERVICE_NAMES[@]}"; do
      [[ "${SERVICE_NAMES[i]}" != service_a ]] || break
    done
    case "${step}" in
      basebackup)
        write_pgpass "${REPL_PASS_FILE}" "${RUN_DIR}/pgpass" "${REPL_USER}"
        PGPASSFILE="${RUN_DIR}/pgpass" pg_tool "${i}" pg_basebackup -h "${SERVICE_HOSTS[i]}" \
          -p "${SERVICE_PORTS[i]}" -U "${REPL_USER}" -w -D "${dir}" -Fp -X stream -c fast --no-sync \
          --manifest-checksums="${MANIFEST_CHECKSUMS}" ;;
      link) link_unchanged service_a "${dir}" "${RUN_DIR}/linked" ;;
      pass2) verify_unlinked "${i}" service_a "${dir}" "${RUN_DIR}/linked" ;;
    esac' script_step "${PGB_SBIN}/pg_backup_all.sh" "$@"
}

# flip_byte FILE: one byte of FILE (at 4096) replaced by its complement, in place.
flip_byte() {
  local b
  b="$(od -An -tu1 -j 4096 -N 1 "$1" | tr -d ' ')"
  # shellcheck disable=SC2059 # the format is the octal escape of the new byte
  printf "\\$(printf '%03o' $((255 - b)))" | dd of="$1" bs=1 seek=4096 conv=notrunc status=none
}

# ---- the tests --------------------------------------------------------------------------------

@test "rawReuse link (default): three nights with churn share every unchanged file; each backup verifies alone" {
  local name a b c shared
  local -a backups
  night 1 1 01:00:00
  night 2 1 02:00:00
  night 3 1 03:00:00
  grep -qE '\[INFO\] \[service_b\] [0-9]+ unchanged file\(s\) \([0-9]+ MiB\) hard-linked to service_b_basebackup_' "${PGB_LAST_LOG}"
  # reusedChecksums skip (default): night 1 had nothing to share (one full pass); the nights after
  # it checksummed only what was not linked.
  run grep -F 'checksumming the files not linked' "${PGB_T}/logs/reuse1.backup.log"
  assert_failure
  grep -qE '\[INFO\] \[service_b\] checksumming the files not linked: pg_verifybackup -n -q, [1-9][0-9]* path\(s\) skipped \(-i\)' "${PGB_LAST_LOG}"
  # The manifests carry SHA-256 checksums (what the links are decided on).
  grep -q '"Checksum-Algorithm": "SHA256"' "${PGB_BASE_DIR}/$(pgb_promoted service_a | tail -n 1)/backup_manifest"
  for name in service_a service_b; do
    mapfile -t backups < <(pgb_promoted "${name}")
    assert_equal "${#backups[@]}" 3
    a="${PGB_BASE_DIR}/${backups[0]}" b="${PGB_BASE_DIR}/${backups[1]}" c="${PGB_BASE_DIR}/${backups[2]}"
    shared="$(shares_unchanged "${a}" "${b}")"
    (( shared >= 100 ))
    shared="$(shares_unchanged "${b}" "${c}")"
    # The catalogs at least are unchanged from night to night.
    (( shared >= 100 ))
    verify_backup "${a}"
    verify_backup "${b}"
    verify_backup "${c}"
  done
  # The untouched table is one file under three names and the Borg stage's (borg.stablePath);
  # the churned one has a copy of its own, in the newest backup and the stage.
  c="${PGB_BASE_DIR}/$(pgb_promoted service_b | tail -n 1)"
  assert_equal "$(stat -c %h "${c}/$(relpath service_b probe)")" 4
  assert_equal "$(stat -c %i "${PGB_BACKUP_MOUNT}/.pgb-borg-stage/service_b/$(relpath service_b probe)")" \
    "$(stat -c %i "${c}/$(relpath service_b probe)")"
  assert_equal "$(stat -c %h "${PGB_BASE_DIR}/$(pgb_promoted service_a | tail -n 1)/$(relpath service_a pgbench_accounts)")" 2
}

@test "rawReuse link: the newest backup, archived by borg_pg_artifacts.sh, comes back whole from Borg" {
  local archive path strip dest c
  c="${PGB_BASE_DIR}/$(pgb_promoted service_b | tail -n 1)"
  pgb_script_cmd borg_pg_artifacts.sh
  pgb_run_logged reuse.borg env TZ=UTC faketime "$(day 1) 03:30:00" "${PGB_CMD[@]}" primary
  expect_rc 0 "${status}" "${PGB_LAST_LOG}"
  archive="$(pgb_borg_archives "${PGB_PRIMARY_REPO}" | tail -n 1)"
  path="$(tborg list --format '{path}{NL}' "${PGB_PRIMARY_REPO}::${archive}" | grep -E "/basebackups/${c##*/}$")"
  strip="$(tr -cd '/' <<<"${path}" | wc -c)"
  dest="${PGB_T}/restore/reuse"
  mkdir -p "${dest}"
  (cd "${dest}" && tborg extract --strip-components "${strip}" "${PGB_PRIMARY_REPO}::${archive}" "${path}")
  verify_backup "${dest}/${c##*/}"
  diff -r "${c}" "${dest}/${c##*/}"
}

@test "rawReuse link: retention deletes the oldest backup and the others stay whole; a night after it links to the newest" {
  local -a before after
  local name
  mapfile -t before < <(pgb_promoted service_b)
  # A day after the first night: rawDays 1 deletes night 1 and keeps nights 2 and 3.
  night 4 2 01:30:00
  grep -qE "pruned raw base backup older than 1 day\(s\): service_b_basebackup_" "${PGB_LAST_LOG}"
  for name in service_a service_b; do
    mapfile -t after < <(pgb_promoted "${name}")
    assert_equal "${#after[@]}" 3
    verify_backup "${PGB_BASE_DIR}/${after[0]}"
    verify_backup "${PGB_BASE_DIR}/${after[1]}"
    verify_backup "${PGB_BASE_DIR}/${after[2]}"
  done
  mapfile -t after < <(pgb_promoted service_b)
  assert_equal "${after[0]}" "${before[1]}"
  # The untouched table: nights 2, 3, 4 and the stage (night 1's name is gone).
  assert_equal "$(stat -c %h "${PGB_BASE_DIR}/${after[2]}/$(relpath service_b probe)")" 4
  # Deleting the middle one by hand leaves the others whole too.
  rm -rf -- "${PGB_BASE_DIR:?}/${after[1]}"
  verify_backup "${PGB_BASE_DIR}/${after[0]}"
  verify_backup "${PGB_BASE_DIR}/${after[2]}"
}

@test "reusedChecksums skip: a flipped byte in a file the night did not link fails pass 2" {
  local fresh="${PGB_BACKUP_MOUNT}/fresh1" rel port
  port="$(pg_service_port service_a)"
  pg_as_postgres "${PGB_PG_BIN}/pgbench" -n -t 200 -h "$(pg_sock_dir)" -p "${port}" postgres >/dev/null
  pg_psql "${port}" -c CHECKPOINT >/dev/null
  script_step basebackup "${fresh}"
  rel="$(relpath service_a pgbench_accounts)"
  flip_byte "${fresh}/${rel}"
  # Pass 1 reads no data: it passes; the full pass sees the byte.
  "${PGB_PG_BIN}/pg_verifybackup" -s -q "${fresh}"
  run "${PGB_PG_BIN}/pg_verifybackup" -q "${fresh}"
  assert_failure
  script_step link "${fresh}"
  (( $(wc -l <"${fresh}.run/linked") >= 100 ))
  # The churned table was not linked: pass 2 checksums it and fails.
  run grep -qxF "${rel}" "${fresh}.run/linked"
  assert_failure
  run script_step pass2 "${fresh}"
  assert_failure
  assert_output --partial "checksum mismatch for file \"${rel}\""
  rm -rf -- "${fresh}" "${fresh}.run"
}

@test "reusedChecksums skip: the linked files are left out of pass 2; a missing one is caught by pass 1" {
  local fresh="${PGB_BACKUP_MOUNT}/fresh2" rel prev
  prev="${PGB_BASE_DIR}/$(pgb_promoted service_a | tail -n 1)"
  script_step basebackup "${fresh}"
  # The untouched table, which the night links to the previous backup.
  rel="$(relpath service_a probe)"
  mv -- "${fresh}/${rel}" "${fresh}.aside"
  run "${PGB_PG_BIN}/pg_verifybackup" -s -q "${fresh}"
  assert_failure
  assert_output --partial "\"${rel}\" is present in the manifest but not on disk"
  mv -- "${fresh}.aside" "${fresh}/${rel}"
  "${PGB_PG_BIN}/pg_verifybackup" -s -q "${fresh}"
  script_step link "${fresh}"
  grep -qxF "${rel}" "${fresh}.run/linked"
  assert_equal "$(stat -c %i "${fresh}/${rel}")" "$(stat -c %i "${prev}/${rel}")"
  # A corrupt copy of its own in the linked file's place: pass 2 does not read it, the full pass does.
  cp -- "${fresh}/${rel}" "${fresh}/${rel}.x"
  flip_byte "${fresh}/${rel}.x"
  mv -f -- "${fresh}/${rel}.x" "${fresh}/${rel}"
  run script_step pass2 "${fresh}"
  assert_success
  assert_output --regexp "checksumming the files not linked: pg_verifybackup -n -q, [1-9][0-9]* path\(s\) skipped"
  run "${PGB_PG_BIN}/pg_verifybackup" -q "${fresh}"
  assert_failure
  assert_output --partial "checksum mismatch for file \"${rel}\""
  # Nor does pass 2 see it missing: that is pass 1's part.
  rm -f -- "${fresh}/${rel}"
  run script_step pass2 "${fresh}"
  assert_success
  # The previous backup is whole.
  verify_backup "${prev}"
  rm -rf -- "${fresh}" "${fresh}.run"
}
