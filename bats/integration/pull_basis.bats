#!/usr/bin/env bats
# The dev pull's basis (devs[].pullBasis previous, issue 14), for real: a server as
# pgb_server_setup makes it (one PostgreSQL 15 cluster with a large table written once and
# pgbench's tables, the generated role and pg_hba, the backup disk), the GENERATED rsync daemon
# config served to the pull key through a real sshd, and the GENERATED dev pull script run by
# hand after two nights with churn between them. Night 2's backup must arrive as links of night
# 1's for what did not change and as rsync deltas for the rest: the bytes received over the wire
# (rsync's own count) stay below the size of the files the server itself had to copy anew. Both
# nights come zstd-compressed (pullCompress's default): night 1 arrives in fewer bytes than its files hold.

PORT=56012

setup_file() {
  load helpers/load
  pgb_require_root
  export PGB_SERVICES="svc:56011" PGB_SSH_PORT="${PORT}" PGB_SSH_USER=root
  export DEV=devbox
  PGB_DEVS_YAML="$(pgb_dev_devs_yaml "${DEV}" itest)"
  export PGB_DEVS_YAML
  pgb_server_setup
  pgb_pull_daemon_start "${PORT}"
  export STORE="${DEV_BASE}/itest/postgres"
  export PULL="${PGB_T}/out/${DEV}/root/usr/local/sbin/pull-server-backups.sh"
  export PORT_SVC=56011

  pgb_load_pgbench svc 2
  pg_fill_random "${PORT_SVC}" cold 24
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

# pull LOG: one nightly pull by hand; PULL_BYTES: the bytes it received over the wire for the
# artifacts tree (rsync's own count, from the line the script logs; the settings copy apart).
pull() {
  pgb_run_logged "$1" bash "${PULL}"
  PULL_BYTES="$(sed -n 's/.* received \([0-9]*\) bytes over the wire (the dry run before it: \([0-9]*\)).*/\1 \2/p' "${PGB_LAST_LOG}" \
    | head -n 1 | awk '{ print $1 + $2 }')"
}

# Bytes of the files of backup NEW (on the server) that are not hard links of backup OLD's: what
# the server's rawReuse link had to copy anew, the day's changed data at file level.
new_bytes() {
  local old="$1" new="$2"
  find "${new}" -type f -printf '%i %s\n' | sort -u \
    | awk -v old="$(find "${old}" -type f -printf '%i\n' | sort -u | tr '\n' ' ')" '
      BEGIN { n = split(old, o, " "); for (i = 1; i <= n; i++) shared[o[i]] = 1 }
      !($1 in shared) { s += $2 } END { print s + 0 }'
}

@test "pullBasis previous: night 2 arrives as links of night 1 and rsync deltas, below the bytes the server copied anew; verified, byte-identical" {
  local night1 night2 changed whole
  pgb_nightly night1 "" none
  assert_equal "${PGB_BACKUP_RC}" 0
  pull pull1
  expect_rc 0 "${status}" "${PGB_LAST_LOG}"
  assert_output --partial "verified and kept: svc_basebackup_"
  night1="$(pgb_promoted svc | tail -n 1)"
  # pullCompress zstd (the default): the daemon behind the forced command compresses what it sends,
  # so night 1 (whole files, no basis yet) arrives in fewer bytes than the files it sent hold (the
  # dry run's count), the random cold table and its WAL included.
  whole="$(sed -n 's/.* receiving \([0-9]*\) bytes from .*::artifacts\/$/\1/p' "${PGB_LAST_LOG}" | head -n 1)"
  printf '# night 1: %s bytes received over the wire for %s bytes of files\n' "${PULL_BYTES}" "${whole}" >&3
  (( PULL_BYTES < whole * 9 / 10 ))

  pg_as_postgres "${PGB_PG_BIN}/pgbench" -n -t 300 -h "$(pg_sock_dir)" -p "${PORT_SVC}" postgres >/dev/null
  pg_psql "${PORT_SVC}" -c CHECKPOINT >/dev/null
  pgb_nightly night2 "" none
  assert_equal "${PGB_BACKUP_RC}" 0
  night2="$(pgb_promoted svc | tail -n 1)"
  [[ "${night2}" != "${night1}" ]]
  pull pull2
  expect_rc 0 "${status}" "${PGB_LAST_LOG}"
  assert_output --partial "verified and kept: ${night2}"

  changed="$(new_bytes "${PGB_BASE_DIR}/${night1}" "${PGB_BASE_DIR}/${night2}")"
  whole="$(du -sb "${PGB_BASE_DIR}/${night2}" | cut -f1)"
  printf '# night 2: %s bytes received over the wire; the server copied %s bytes anew of %s\n' \
    "${PULL_BYTES}" "${changed}" "${whole}" >&3
  (( changed > 0 && changed < whole / 2 ))
  (( PULL_BYTES < changed ))

  # What was kept is the server's backup, verified; the cold table is night 1's file here too.
  diff -r "${PGB_BASE_DIR}/${night2}" "${STORE}/basebackups/${night2}"
  "${PGB_PG_BIN}/pg_verifybackup" -q "${STORE}/basebackups/${night2}"
  "${PGB_PG_BIN}/pg_verifybackup" -q "${STORE}/basebackups/${night1}"
  local rel
  rel="$(pg_psql "${PORT_SVC}" -At -c "SELECT pg_relation_filepath('cold')")"
  assert [ "${STORE}/basebackups/${night2}/${rel}" -ef "${STORE}/basebackups/${night1}/${rel}" ]
  rel="$(pg_psql "${PORT_SVC}" -At -c "SELECT pg_relation_filepath('pgbench_accounts')")"
  assert [ ! "${STORE}/basebackups/${night2}/${rel}" -ef "${STORE}/basebackups/${night1}/${rel}" ]
}

@test "the Borg stage's links do not refuse the pull, but a planted link to a file outside still does, staged or not" {
  local secret="${PGB_BACKUP_MOUNT}/outside-secret" night stage="${PGB_BACKUP_MOUNT}/.pgb-borg-stage/svc"
  # The stage holds links of the newest backup (borg.stablePath); the pull above went through.
  night="$(pgb_promoted svc | tail -n 1)"
  assert [ "${stage}/PG_VERSION" -ef "${PGB_BASE_DIR}/${night}/PG_VERSION" ]
  printf 'not for the dev machine\n' >"${secret}"
  ln -- "${secret}" "${PGB_BASE_DIR}/${night}/planted"
  ln -- "${secret}" "${stage}/planted"
  pull pull-planted
  expect_rc 1 "${status}" "${PGB_LAST_LOG}"
  assert_output --partial "basebackups/${night}/planted (3 links, 2 in the tree)"
  assert [ ! -e "${DEV_BASE}/.pgb-incoming/itest/basebackups/${night}/planted" ]
  rm -f -- "${PGB_BASE_DIR}/${night}/planted" "${stage}/planted" "${secret}"
  pull pull-clean
  expect_rc 0 "${status}" "${PGB_LAST_LOG}"
}
