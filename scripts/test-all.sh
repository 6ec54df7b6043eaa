#!/usr/bin/env bash
# Every test, on a fresh Debian 12 machine as root: installs what it needs, then runs
# vitest, `pgb-gen check`, the bats unit suites, the bats integration suites (real PostgreSQL,
# Borg, tmpfs, sshd, a private Docker engine) and a smoke run of the benchmark. Ends on "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
readonly ROOT="${PWD}"
readonly WORK="${ROOT}/.tmp/test-all"

readonly DEBIAN_PACKAGES=(postgresql postgresql-contrib borgbackup shellcheck bats openssh-server openssh-client docker.io mmdebstrap
  rsync sudo systemd systemd-container util-linux iproute2 pgbackrest procps psmisc faketime
  prometheus prometheus-node-exporter curl jq python3 exim4-daemon-light)

log() { printf '[%s] %s\n' "$(date -u +'%Y-%m-%dT%H:%M:%SZ')" "$*"; }

install_debian_packages() {
  local missing=() pkg
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' || missing+=("${pkg}")
  done
  if (( ${#missing[@]} )); then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

passed=0
failed=0
failures=()

# Adds a runner's counts; a runner that crashed without counting is one failure.
count() {
  local name="$1" p="$2" f="$3" rc="$4"
  if [[ -z "${p}" || -z "${f}" ]]; then p=0; f=1; fi
  if (( rc != 0 && f == 0 )); then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  (( f == 0 )) || failures+=("${name}")
  log "${name}: ${p} passed, ${f} failed"
}

run_vitest() {
  local rc=0
  npx vitest run --reporter=default --reporter=json --outputFile="${WORK}/vitest.json" || rc=$?
  count vitest \
    "$(node -e 'const r=require(process.argv[1]);console.log(r.numPassedTests)' "${WORK}/vitest.json" 2>/dev/null)" \
    "$(node -e 'const r=require(process.argv[1]);console.log(r.numFailedTests+(r.numTotalTestSuites&&r.success===false&&r.numFailedTests===0?1:0))' "${WORK}/vitest.json" 2>/dev/null)" \
    "${rc}"
}

# A single command counted as one test.
run_step() {
  local name="$1" rc=0
  shift
  "$@" || rc=$?
  if (( rc == 0 )); then count "${name}" 1 0 0; else count "${name}" 0 1 "${rc}"; fi
}

run_bats() {
  local name="$1" rc=0 tap
  shift
  tap="${WORK}/${name}.tap"
  node_modules/bats/bin/bats --formatter tap "$@" | tee "${tap}" || rc=$?
  count "${name}" "$(grep -c '^ok ' "${tap}" || true)" "$(grep -c '^not ok ' "${tap}" || true)" "${rc}"
}

main() {
  [[ "${EUID}" -eq 0 ]] || { echo "run as root: the integration suites mount tmpfs and start PostgreSQL and sshd" >&2; exit 2; }
  install_debian_packages
  log "installing npm packages"
  if [[ "${CI:-}" == "true" || ! -d node_modules ]]; then
    npm ci --no-audit --no-fund >/dev/null
  else
    npm install --no-audit --no-fund >/dev/null
  fi
  rm -rf "${WORK}"
  mkdir -p "${WORK}"
  export SHELLCHECKJS_BIN=/usr/bin/shellcheck

  run_vitest
  run_step pgb-gen-check node dist/cli/main.js check -c pgb.config.yaml -o generated
  run_bats bats-unit bats/unit
  run_bats bats-integration bats/integration
  if [[ -f bench/run.sh ]]; then
    run_step bench-smoke bash bench/run.sh --smoke
  fi

  (( ${#failures[@]} == 0 )) || log "failed: ${failures[*]}"
  printf '%d passed, %d failed\n' "${passed}" "${failed}"
  (( failed == 0 ))
}

main "$@"
