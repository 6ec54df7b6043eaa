# A real HTTP receiver on 127.0.0.1 (http_recorder.py, Python's http.server) that records every
# request: it stands in for ntfy, Healthchecks and the dead man's switch. Started for a suite,
# recorded for teardown (pgb_started_add), stopped by its pid.

# http_recorder_start PORT: logs to PGB_T/http/requests.jsonl; exports HTTP_RECORDER_URL.
http_recorder_start() {
  local port="$1" py=/usr/bin/python3
  [[ -x "${py}" ]] || py="$(command -v python3)"
  mkdir -p "${PGB_T}/http"
  : >"${PGB_T}/http/requests.jsonl"
  printf '0' >"${PGB_T}/http/fail"
  "${py}" "${PGB_HELPERS_DIR}/http_recorder.py" "${port}" "${PGB_T}/http/requests.jsonl" "${PGB_T}/http/fail" \
    </dev/null >"${PGB_T}/logs/http_recorder.log" 2>&1 3>&- &
  pgb_started_add pid "$!"
  export HTTP_RECORDER_URL="http://127.0.0.1:${port}"
  pgb_wait_for "http recorder on 127.0.0.1:${port}" 120 http_recorder_diagnose pgb_port_open "${port}"
}

# http_recorder_fail down|up|N: every request answered 503 / none / the next N.
http_recorder_fail() {
  [[ "$1" != up ]] || set -- 0
  printf '%s' "$1" >"${PGB_T}/http/fail"
}

# http_recorder_requests [JQ_FILTER]: the recorded requests (one JSON object a line), filtered.
http_recorder_requests() {
  jq -c "${1:-.}" "${PGB_T}/http/requests.jsonl"
}

http_recorder_reset() {
  : >"${PGB_T}/http/requests.jsonl"
}

http_recorder_diagnose() {
  pgb_tail_file "${PGB_T}/logs/http_recorder.log"
}
