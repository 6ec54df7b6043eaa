#!/usr/bin/env bats
# Unit suite of the generated pgb-notify.sh: its URL files are secrets, checked like every other
# (missing, wrong owner, readable by others, empty, placeholder) and for their shape; a refused
# file delivers nothing and keeps the message in the outbox. curl is a PATH stub that logs its
# argv and the URL of the config file it was given (-K); everything else is real.

load helpers

setup_file() {
  ut_setup_file
}

teardown_file() {
  ut_teardown_file
}

setup() {
  ut_setup
  UT_NOTIFY=1 ut_build
  NOTIFY_SCRIPT="${BACKUP_SCRIPT%/*}/pgb-notify.sh"
  export NOTIFY_SCRIPT
  export PGB_MONITOR_STATE_DIR="${BATS_TEST_TMPDIR}/monitor"
  export WEBHOOK_FILE="${D}/secrets/webhook.url" DEADMAN_FILE="${D}/secrets/deadman.url"
  # shellcheck disable=SC2016
  make_stub "${STUB_BIN}/curl" '
while (( $# )); do
  if [[ "$1" == -K ]]; then sed -n "s/^url = //p" "$2" >>"${STUB_LOG}/curl-url.log"; fi
  shift
done
exit "$(cat "${STUB_STATE}/curl_rc" 2>/dev/null || echo 0)"'
  ut_secret "${WEBHOOK_FILE}" 'https://ntfy.example/pgb-topic-s3cret'
  ut_secret "${DEADMAN_FILE}" 'https://hc.example/ping/deadman-s3cret'
}

teardown() {
  ut_teardown
}

send() {
  run bash "${NOTIFY_SCRIPT}" --send 'a title' 4 warning <<<'a body'
}

outbox_size() {
  bash "${NOTIFY_SCRIPT}" --outbox-size
}

# refused REASON: the send failed for REASON, curl was never called, the message waits.
refused() {
  assert_failure
  assert_output --partial "$1"
  assert_equal "$(stub_count curl)" 0
  assert_equal "$(outbox_size)" 1
}

@test "a good URL file: delivered through curl's config file, the URL never on argv or in the output" {
  send
  assert_success
  assert_equal "$(stub_count curl)" 1
  assert_equal "$(cat "${STUB_LOG}/curl-url.log")" '"https://ntfy.example/pgb-topic-s3cret"'
  run stub_calls curl
  refute_output --partial 's3cret'
  assert_equal "$(outbox_size)" 0
}

@test "URL file missing: refused, kept in the outbox" {
  rm -f "${WEBHOOK_FILE}"
  send
  refused "secret file missing: ${WEBHOOK_FILE}"
}

@test "URL file not owned by root: refused, kept in the outbox" {
  chown nobody "${WEBHOOK_FILE}"
  send
  refused "secret file not owned by root: ${WEBHOOK_FILE}"
}

@test "URL file readable by others (0644): refused, kept in the outbox; 0640 is accepted" {
  chmod 0644 "${WEBHOOK_FILE}"
  send
  refused "secret file is readable or writable by others (mode 644"
  chmod 0640 "${WEBHOOK_FILE}"
  run bash "${NOTIFY_SCRIPT}" --flush
  assert_success
  assert_equal "$(outbox_size)" 0
}

@test "URL file empty: refused, kept in the outbox" {
  : >"${WEBHOOK_FILE}"
  send
  refused "secret file is empty: ${WEBHOOK_FILE}"
}

@test "URL file still holding install.sh's placeholder: refused, kept in the outbox" {
  ut_secret "${WEBHOOK_FILE}" 'REPLACE_WITH the ntfy-compatible webhook URL'
  send
  refused "secret file still holds the placeholder: ${WEBHOOK_FILE}"
}

@test "URL file holding something else than an http(s) URL: refused, its content never printed" {
  ut_secret "${WEBHOOK_FILE}" 'ftp://ntfy.example/not-this-s3cret'
  send
  refused "secret file does not hold an http(s) URL: ${WEBHOOK_FILE}"
  refute_output --partial 's3cret'
}

@test "the dead man's switch URL file is checked the same way" {
  chmod 0604 "${DEADMAN_FILE}"
  run bash "${NOTIFY_SCRIPT}" --deadman <<<'PGB alpha OK'
  assert_failure
  assert_output --partial "secret file is readable or writable by others (mode 604"
  assert_equal "$(stub_count curl)" 0
  chmod 0600 "${DEADMAN_FILE}"
  run bash "${NOTIFY_SCRIPT}" --deadman <<<'PGB alpha OK'
  assert_success
  assert_equal "$(cat "${STUB_LOG}/curl-url.log")" '"https://hc.example/ping/deadman-s3cret"'
}

@test "a channel that fails keeps the message; the next flush delivers it once" {
  printf 22 >"${STUB_STATE}/curl_rc"
  send
  assert_failure
  assert_output --partial 'kept in the outbox for the next run'
  assert_equal "$(outbox_size)" 1
  rm -f "${STUB_STATE}/curl_rc"
  run bash "${NOTIFY_SCRIPT}" --flush
  assert_success
  run bash "${NOTIFY_SCRIPT}" --flush
  assert_success
  assert_equal "$(stub_count curl)" 2
  assert_equal "$(outbox_size)" 0
}
