#!/usr/bin/env bash
# bench/disaster.sh: wall times of the disaster day (SPEC 11, issue 13), beside `npm run bench`.
# A benchmark, not a test: it prints timings and asserts none (it stops when a step fails).
#
# On the bench's data (SERVICES PostgreSQL 17 containers of the trixie test image, each loaded
# with `pgbench -i -s SCALE`), after one nightly run into both repositories, it measures:
#   - the RTO of one service restored into its container (`pgb-restore.sh restore --into-container`,
#     until every database answers) from the raw artifacts, the primary repo and the USB repo;
#   - each chapter of the server README's section 11, its commands as they stand: one service
#     broken (to the second before a DROP TABLE), the backup disk lost, every service from a dev
#     machine's copy (11.4: the copy made here with rsync of the server's artifacts, as the pull
#     leaves them: the network between the hosts is not measured), the server gone.
# It reuses the integration rig (bats/integration/helpers: private dockerd, images, tmpfs disks).
#
# usage: bench/disaster.sh [--smoke] [--runs N] [--scale N] [--services N]
# Needs root; run it in a network namespace of its own (`ip netns exec NS bash bench/disaster.sh`):
# the containers use --network host. Ports: BENCH_DISASTER_PORT_BASE (default 55490) and up.
set -euo pipefail

RUNS=3
SCALE=25
SERVICES=3
while (( $# )); do
  case "$1" in
    --smoke) RUNS=1 SCALE=1 ;;
    --runs) RUNS="$2"; shift ;;
    --scale) SCALE="$2"; shift ;;
    --services) SERVICES="$2"; shift ;;
    *) printf 'usage: %s [--smoke] [--runs N] [--scale N] [--services N]\n' "$0" >&2; exit 2 ;;
  esac
  shift
done

HELPERS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../bats/integration/helpers" && pwd)"
# shellcheck source=/dev/null # the integration rig (docker, README runner included), linted on its own
source "${HELPERS}/load.bash"

log() { printf '[disaster-bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
RESULTS=()

# timed NAME CMD...: runs CMD (logged), records its wall time in seconds; stops on failure.
timed() {
  local name="$1" start end
  shift
  start="$(date +%s%N)"
  pgb_run_logged "${name}" "$@"
  end="$(date +%s%N)"
  # shellcheck disable=SC2154 # status is set by pgb_run_logged
  if [[ "${status}" != 0 ]]; then
    log "FAILED: ${name}"
    tail -n 30 "${PGB_LAST_LOG}" >&2
    exit 1
  fi
  RESULTS+=("$(printf '%s\t%s' "${name%%#*}" "$(awk -v ns=$(( end - start )) 'BEGIN { printf "%.1f", ns / 1e9 }')")")
  log "${name}: ${RESULTS[-1]##*$'\t'} s"
}

# Data moved aside by --into-container: gone between runs (it would fill the disk).
drop_previous() {
  local name
  for name in $(pgb_service_names); do
    find "$(dirname "$(docker_volume_dir "${name}_pgdata")")" -mindepth 1 -maxdepth 1 -name 'pgb-previous-*' -exec rm -rf {} +
  done
}

cleanup() {
  docker_stop || true
  pgb_teardown_all || true
}
trap cleanup EXIT

main() {
  local base="${BENCH_DISASTER_PORT_BASE:-55490}" i spec="" name run from first
  for (( i = 1; i <= SERVICES; i++ )); do
    spec+="bench_${i}:$(( base + i )) "
  done
  export PGB_SERVICES="${spec% }" PGB_PG_VERSION=17 PGB_DOCKER=yes PGB_WAL=true
  # A dev machine pulling from the server: the README then has chapter 11.4.
  export PGB_DEVS_YAML="devs:
  - name: benchdev
    pullFrom: [itest]
    localBase: @PGB_T@/dev/upload"
  export PGB_BACKUP_SIZE="${BENCH_BACKUP_SIZE:-8g}" PGB_EXT_SIZE="${BENCH_EXT_SIZE:-4g}" PGB_EXT_RESERVE=0
  pgb_ensure_pkg borg borgbackup >/dev/null 2>&1 || true
  log "setting up ${SERVICES} PostgreSQL 17 containers, pgbench -s ${SCALE} each"
  pgb_server_setup
  local -a loads=()
  for name in $(pgb_service_names); do
    pgb_load_pgbench "${name}" "${SCALE}" &
    loads+=("$!")
  done
  # By pid: a bare wait would wait for dockerd too.
  wait "${loads[@]}"
  pgb_run_logged repo-init env -u BORG_PASSPHRASE "BORG_BASE_DIR=${BORG_BASE_DIR}" bash "${PGB_SBIN}/pgb_repo_init.sh"
  timed "nightly (base backups + both repositories)" pgb_nightly_ok
  first="$(pgb_service_names | head -n 1)"

  for (( run = 1; run <= RUNS; run++ )); do
    for from in raw primary external; do
      pgb_script_cmd pgb-restore.sh
      timed "RTO ${first} into its container from ${from}#${run}" "${PGB_CMD[@]}" restore --service "${first}" --into-container --from "${from}"
      drop_previous
    done
  done

  local out="${PGB_T}/out/${PGB_SERVER_NAME}"
  docker_psql "${first}_pg" -c 'CREATE TABLE bench_notes AS SELECT g AS id FROM generate_series(1, 1000) g'
  docker_psql "${first}_pg" -c 'SELECT pg_switch_wal()' >/dev/null
  pgb_nightly_ok
  pgb_script_cmd pgb_receivewal.sh
  setsid "${PGB_CMD[@]}" "${first}" >"${PGB_T}/logs/receivewal.log" 2>&1 &
  pgb_started_add pgid "$!"
  pgb_wait_for "the receiver's slot" 120 - docker_slot_active "${first}"
  BEFORE="$(docker_psql "${first}_pg" -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")"
  export BEFORE
  local segs
  segs="$(wal_segments "${first}")"
  docker_psql "${first}_pg" -c 'DROP TABLE bench_notes' -c 'SELECT pg_switch_wal()' >/dev/null
  pgb_wait_for "the segment with the DROP" 120 - wal_segments_above "${first}" "${segs}"
  # shellcheck disable=SC2016 # the README heading, backquotes and all
  timed "11.1 one service broken (PITR into its container)" readme_run_installed "${out}" "${out}/README.md" '### 11.1 One service is broken (a `DROP TABLE`, a bad migration)' 1
  # The receiver the restore started again: stopped before the disk goes.
  pgb_wait_for "the restarted receiver's pid file" 120 - test -s "${PGB_T}/run/pgb-receivewal-${first}.pid"
  local pid
  pid="$(cat "${PGB_T}/run/pgb-receivewal-${first}.pid")"
  kill -TERM "${pid}"
  pgb_wait_for "the receiver to stop" 120 - pgb_pid_gone "${pid}"
  drop_previous

  # The dev machine's copy, where its pull keeps it (DEVCOPY of 11.4 without its host part).
  DEVCOPY="$(readme_devcopy "${out}/README.md" benchdev)"
  [[ -n "${DEVCOPY}" ]] || { log "no DEVCOPY in ${out}/README.md"; exit 1; }
  export DEVCOPY
  mkdir -p "${DEVCOPY}"
  rsync -a "${PGB_ARTIFACTS}/" "${DEVCOPY}"

  pgb_umount "${PGB_BACKUP_MOUNT}"
  timed "11.2 backup disk lost (every service from the USB repo)" readme_run_installed "${out}" "${out}/README.md" '### 11.2 The backup disk died' 1
  drop_previous
  timed "11.4 backup disk lost (every service from a dev machine's copy)" readme_run_installed "${out}" "${out}/README.md" "### 11.4 From a dev machine's copy (the backup disk died, or the server is gone)" 1
  drop_previous

  for name in $(pgb_service_names); do
    tdocker rm -f -v "${name}_pg" >/dev/null
    tdocker volume rm "${name}_pgdata" >/dev/null
  done
  rm -rf -- "${BORG_BASE_DIR}"
  mkdir -p "${BORG_BASE_DIR}"
  timed "11.3 server gone: new empty containers" new_containers
  timed "11.3 server gone: key import + every service from the USB repo" readme_run_installed "${out}" "${out}/README.md" '### 11.3 The server is gone' 1

  printf '\n%-70s %10s\n' 'step (wall time, s)' 'median'
  report
}

pgb_nightly_ok() {
  pgb_nightly bench "" all
  [[ "${PGB_BACKUP_RC}" == 0 && "${PGB_BORG_RC}" == 0 ]]
}

new_containers() {
  local name
  for name in $(pgb_service_names); do
    docker_service_run "${name}_pg" "${name}_pgdata" "${PGB_DOCKER_IMAGE}" "$(pg_service_port "${name}")"
  done
}

# Median and min-max per step name.
report() {
  printf '%s\n' "${RESULTS[@]}" | sort -t$'\t' -k1,1 -s | awk -F'\t' '
    function flush() { if (n) { m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      printf "%-70s %10.1f  (%d run(s), %.1f-%.1f)\n", key, m, n, v[1], v[n] } }
    $1 != key { flush(); key = $1; n = 0 }
    { v[++n] = $2; for (i = n; i > 1 && v[i] < v[i - 1]; i--) { t = v[i]; v[i] = v[i - 1]; v[i - 1] = t } }
    END { flush() }'
}

main
