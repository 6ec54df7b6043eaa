# What the monitoring suites share: the channels' secret files, one pgb-check.sh run as its timer
# runs it (its states kept as a sequence per check), the messages the HTTP recorder and the local
# mailbox received. Load after helpers/load and helpers/http_recorder; PGB_SBIN names the host's
# generated scripts, PGB_MONITOR_STATE_DIR the checker's state (outbox, last states).

# url_file NAME URL: a channel's URL in its root-only secret file (secrets/NAME.url).
url_file() {
  mkdir -p "${PGB_T}/secrets"
  (umask 077 && printf '%s\n' "$2" >"${PGB_T}/secrets/$1.url")
}

# state_of CHECK: the check's state in a fresh pgb-status.sh --tsv run.
state_of() {
  pgb_script_cmd pgb-status.sh
  "${PGB_CMD[@]}" --tsv 2>/dev/null | awk -F '\t' -v c="$1" '$1 == c { print $2 }'
}

# check_run [FAKE_TIME]: one pgb-check.sh run (as the timer does), at FAKE_TIME ("YYYY-MM-DD
# HH:MM:SS" UTC, faketime) if given; appends every check's state to its sequence (logs/seq/<check>).
# shellcheck disable=SC2154 # status and output come from pgb_run_logged
check_run() {
  local -a pre=()
  if [[ -n "${1:-}" ]]; then
    pre=(env TZ=UTC faketime "$1")
  fi
  pgb_script_cmd pgb-check.sh
  pgb_run_logged check "${pre[@]}" "${PGB_CMD[@]}"
  [[ "${status}" == 0 ]] || { printf '%s\n' "${output}" >&2; return 1; }
  mkdir -p "${PGB_T}/logs/seq"
  local name state rest
  while IFS=$'\t' read -r name state rest; do
    printf '%s ' "${state}" >>"${PGB_T}/logs/seq/${name//\//_}"
  done <"${PGB_MONITOR_STATE_DIR}/states"
}

# seq_of CHECK: the states the checker saw, oldest first, since seq_reset.
seq_of() {
  local f="${PGB_T}/logs/seq/${1//\//_}"
  [[ -f "${f}" ]] && sed 's/ $//' "${f}"
}

seq_reset() {
  rm -rf "${PGB_T}/logs/seq"
}

# webhook_titles / webhook_bodies: what the webhook (recorder path /ntfy/pgb-test) received,
# delivered (not refused), in order.
webhook_titles() {
  http_recorder_requests 'select(.path == "/ntfy/pgb-test" and (.refused | not)) | .title' | jq -r .
}

webhook_bodies() {
  http_recorder_requests 'select(.path == "/ntfy/pgb-test" and (.refused | not)) | .body' | jq -r .
}

# A local user whose mailbox the host's MTA (exim4) delivers to: PGB_MAIL_USER@localhost; and
# the MTA's daemon on 127.0.0.1:25, where pgb-notify.sh hands its mails over (started for the
# suite when nothing listens there, stopped by its pid).
mail_user_add() {
  pgb_ensure_pkg exim4 exim4-daemon-light
  useradd --system --home-dir "${PGB_T}/mailhome" --create-home --shell /usr/sbin/nologin -- "${PGB_MAIL_USER}"
  : >"${PGB_T}/created-mail-user"
  pgb_port_open 25 && return 0
  exim4 -bd -oX 25 -oP "${PGB_T}/exim.pid" </dev/null >"${PGB_T}/logs/exim.log" 2>&1 3>&-
  pgb_wait_for "the MTA's pid file" 60 mail_diagnose test -s "${PGB_T}/exim.pid"
  pgb_started_add pid "$(cat "${PGB_T}/exim.pid")"
  pgb_wait_for "the MTA on 127.0.0.1:25" 60 mail_diagnose pgb_port_open 25
}

mail_user_remove() {
  [[ -n "${PGB_T:-}" && -f "${PGB_T}/created-mail-user" ]] || return 0
  userdel -- "${PGB_MAIL_USER}" || true
  rm -f -- "/var/mail/${PGB_MAIL_USER}"
}

# mailbox_subjects: the subjects of the mails the local mailbox received, in order.
mailbox_subjects() {
  sed -n 's/^Subject: //p' "/var/mail/${PGB_MAIL_USER}" 2>/dev/null
}

# mailbox_has N: at least N mails arrived.
mailbox_has() {
  [[ "$(mailbox_subjects | wc -l)" -ge "$1" ]]
}

mail_diagnose() {
  pgb_tail_file /var/log/exim4/mainlog 10
}
