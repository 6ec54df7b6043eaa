#!/usr/bin/env bash
# bench/run.sh: the SPEC §8 benchmark (`npm run bench`). A benchmark, not a test: timings are
# printed, never asserted; the exit status only says whether every step ran.
#
# On real PostgreSQL clusters (loopback only) it measures, side by side and alternating candidates:
#   1. nightly pipeline, day 1: the generated pg_backup_all.sh + borg_pg_artifacts.sh primary (per
#      lever: parallelJobs, compression, chunker params) against the raw copy limit (tar of the data
#      dirs with fsync), the runbook's pipeline and pgBackRest's full backup;
#   2. day 2 after `pgbench -t N` per database: repository growth and time, Borg (per lever, and with
#      the files cache disabled) against pgBackRest's incremental;
#   3. restore of one service until it accepts read-write connections: from Borg, from the raw
#      artifacts still on disk, and with pgBackRest;
#   4. `pgb-gen build` of a 100-service config against a bare `node -e 0`;
#   5. raw disk: what three nights of raw base backups (with churn) take, rawReuse link against
#      copy, and the bytes a pull of night 2 sends (rsync -a as the dev pull did, with -H, with
#      pullBasis previous, and that with each rsync --compress-choice, with rsync's CPU).
# Every measure runs for each data profile (--profile): `uniform` is pgbench's tables, churned
# uniformly; `cold` is mostly a large table written once with an index on it, and pgbench's
# tables at scale 1 as the hot set the churn writes to (what most services look like).
# Prints medians, min-max, ratios and peak memory (RSS of the largest process of each step).
#
# usage: bench/run.sh [--smoke] [--runs N] [--scale N] [--clusters N] [--churn N] [--profile P] [--only P] [--nightly C] [--all] [--keep]
#   --smoke     tiny scale, one run: proves the bench still works (CI)
#   --profile   uniform, cold or both (default both: one after the other, each with its report)
#   --only P    only these phases (comma-separated: nightly, growth, raw, build)
#   --nightly C only these candidates in the nightly phase (comma-separated, e.g. gen-default,gen-checkall)
#   --all       also the levers measured before and not taken (prototypes, parallelJobs 1, zstd,
#               buzhash, encryption modes, files cache disabled)
#   --keep      keep the work directory (clusters are stopped all the same)
# Environment: BENCH_TMPDIR (default /var/tmp): where the work directory is made (use a disk, not tmpfs).
# Needs root (the generated scripts refuse to run otherwise), Node >= 20, and installs postgresql,
# borgbackup, pgbackrest and time with apt-get when they are missing.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF
ROOT="${BENCH_ROOT:-$(cd "$(dirname "${SELF}")/.." && pwd)}"
readonly ROOT
# Ports (55460-55489 are the bench's): full run clusters 55460.., restore 55480; smoke run
# clusters 55470.., restore 55481, so a smoke run can go on beside a full one.
PORT_BASE="${BENCH_PORT_BASE:-55460}"
RESTORE_PORT="${BENCH_RESTORE_PORT:-55480}"
readonly REPL_USER=pgb_bench_repl
readonly DEBIAN_PACKAGES=(postgresql postgresql-contrib borgbackup pgbackrest time rsync)
CLK_TCK="$(getconf CLK_TCK)"
readonly CLK_TCK

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# ---- paths (all under the work directory; exported so re-entered calls see them) -----------------
set_paths() {
  PGDIR="${WORK}/pg"
  SOCK="${WORK}/sock"
  MNT="${WORK}/backup"
  ART="${MNT}/postgres"
  CFGART="${MNT}/config"
  SECRETS="${WORK}/secrets"
  PGBR="${WORK}/pgbackrest"
  PGBR_CONF="${PGBR}/pgbackrest.conf"
  GEN="${WORK}/gen"
  BORGBASE="${WORK}/borgbase"
  RESTORE_DIR="${WORK}/restore"
  LOGFILE="${WORK}/bench.log"
  RESULTS="${WORK}/results.tsv"
  META="${WORK}/meta.tsv"
}

# ---- options -------------------------------------------------------------------------------------
MODE=full
RUNS=3
SCALE=25
CLUSTERS=3
CHURN_TX=2000
BUILD_SERVICES=100
BUILD_RUNS=5
BURN_STEP=1000
KEEP=""
PROFILE=both
ALL=""
ONLY=nightly,growth,raw,build
NIGHTLY_ONLY=""
# Candidates of each phase (full run; --smoke runs each kind of step once).
NIGHTLY=(tar runbook pgbackrest gen-default gen-checkall gen-copy gen-ctime gen-nostage gen-r0 gen-r0-nostage)
GROWTH=(gen-default gen-ctime gen-nostage pgbackrest)
# Restore from Borg: `gen-*` is a bare `borg extract` of the candidate's repository; `script:CAND[:N]`
# is the generated pgb-restore.sh of CAND (restoreJobs N, default the config's) from its repository;
# `stage:CAND` a bare `borg extract` of the stable stage path (no listing of the archive first).
RESTORE=(gen-default script:gen-default stage:gen-default raw pgbackrest)
# Raw disk and pull: the rawReuse modes.
RAW=(gen-copy gen-default)
# The pull's rsync --compress-choice variants measured beside the uncompressed basis pull.
PULL_COMPRESS=(zstd lz4 zlibx)
# --all: the levers measured before (bench/README.md) and not taken.
readonly NIGHTLY_ALL=(proto-overlap proto-repos proto-repos-after proto-repos-create gen-p1 gen-zstd gen-buzhash gen-enc-repokey gen-enc-blake2)
readonly GROWTH_ALL=(gen-buzhash gen-nofc gen-enc-repokey gen-enc-blake2 runbook)
readonly RESTORE_ALL=(gen-buzhash gen-enc-repokey gen-enc-blake2 script:gen-default:1)

parse_args() {
  local explicit=()
  while (( $# )); do
    case "$1" in
      --smoke) MODE=smoke ;;
      --runs) RUNS="$2"; explicit+=(RUNS); shift ;;
      --scale) SCALE="$2"; explicit+=(SCALE); shift ;;
      --clusters) CLUSTERS="$2"; explicit+=(CLUSTERS); shift ;;
      --churn) CHURN_TX="$2"; explicit+=(CHURN_TX); shift ;;
      --profile) PROFILE="$2"; shift ;;
      --all) ALL=1 ;;
      --only) ONLY="$2"; shift ;;
      --nightly) NIGHTLY_ONLY="$2"; shift ;;
      --keep) KEEP=1 ;;
      -h | --help) sed -n '2,/^set -euo/p' "${SELF}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown option: $1 (try --help)" ;;
    esac
    shift
  done
  if [[ "${MODE}" == smoke ]]; then
    [[ " ${explicit[*]} " == *" RUNS "* ]] || RUNS=1
    [[ " ${explicit[*]} " == *" SCALE "* ]] || SCALE=1
    [[ " ${explicit[*]} " == *" CLUSTERS "* ]] || CLUSTERS=2
    [[ " ${explicit[*]} " == *" CHURN_TX "* ]] || CHURN_TX=50
    BUILD_RUNS=1
    BURN_STEP=100
    PORT_BASE=55470
    RESTORE_PORT=55481
    NIGHTLY=(tar runbook pgbackrest gen-default gen-copy)
    GROWTH=(gen-default pgbackrest)
    RESTORE=(gen-default script:gen-default stage:gen-default raw pgbackrest)
  fi
  if [[ -n "${NIGHTLY_ONLY}" ]]; then
    IFS=, read -r -a NIGHTLY <<<"${NIGHTLY_ONLY}"
  fi
  if [[ -n "${ALL}" ]]; then
    NIGHTLY+=("${NIGHTLY_ALL[@]}")
    GROWTH+=("${GROWTH_ALL[@]}")
    RESTORE+=("${RESTORE_ALL[@]}")
  fi
  case "${PROFILE}" in
    uniform | cold | both) ;;
    *) die "--profile is uniform, cold or both" ;;
  esac
  local v
  for v in RUNS SCALE CLUSTERS CHURN_TX; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v} must be a positive integer"
  done
  (( CLUSTERS <= 9 )) || die "at most 9 clusters (ports ${PORT_BASE}..$((PORT_BASE + 8)))"
}

# ---- prerequisites -------------------------------------------------------------------------------
ensure_packages() {
  local missing=() pkg
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' || missing+=("${pkg}")
  done
  if (( ${#missing[@]} )); then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get"
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  command -v node >/dev/null || die "node (>= 20) is needed"
}

# The newest installed PostgreSQL major version that has server, client and pgbench.
find_pg() {
  local dir
  PG_VERSION=""
  for dir in /usr/lib/postgresql/*/bin; do
    if [[ -x "${dir}/initdb" && -x "${dir}/pg_basebackup" && -x "${dir}/pgbench" ]]; then
      PG_VERSION="$(basename "$(dirname "${dir}")")"
      PG_BIN="${dir}"
    fi
  done
  [[ -n "${PG_VERSION}" ]] || die "no PostgreSQL server with pgbench under /usr/lib/postgresql"
}

build_generator() {
  if [[ ! -x "${ROOT}/node_modules/.bin/tsc" ]]; then
    log "installing npm dependencies"
    (cd "${ROOT}" && npm ci --no-audit --no-fund >/dev/null)
  fi
  (cd "${ROOT}" && npm run --silent build >&2) || die "npm run build failed"
}

# ---- helpers -------------------------------------------------------------------------------------
as_pg() { runuser -u postgres -- "$@"; }
psql_c() { # psql_c INDEX SQL...
  local i="$1"
  shift
  as_pg "${PG_BIN}/psql" -h "${SOCK}" -p "$((PORT_BASE + i))" -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"
}
pgbr() { as_pg pgbackrest --config="${PGBR_CONF}" "$@"; }
# Direct borg calls of the bench itself (the generated scripts use their own BORG_PASSCOMMAND).
bborg() {
  local cand="$1"
  shift
  BORG_PASSPHRASE="$(sed -n 's/^BORG_PASSPHRASE=//p' "${SECRETS}/borg.env")" \
    BORG_BASE_DIR="${BORGBASE}/${cand}" borg "$@"
}
random_secret() { head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9'; }
bytes_of() { du -sb "$1" | cut -f1; }
repo_of() { printf '%s/borg-%s' "${MNT}" "$1"; }
# The bytes of the per-service repositories of a prototype (repo_of PROTO-svcN).
repo_bytes_of() {
  local i total=0
  for ((i = 0; i < CLUSTERS; i++)); do total=$((total + $(bytes_of "$(repo_of "$1-svc${i}")"))); done
  printf '%s' "${total}"
}
sbin_of() { printf '%s/%s/root/usr/local/sbin' "${GEN}" "$1"; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"${RESULTS}"; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"${META}"; }

# CPU clock ticks used so far by the bench's PostgreSQL servers: each postmaster, its live children
# and the children that exited (a base backup's walsender ends with it). The server side of a
# backup is not a child of the step, so /usr/bin/time does not see it.
pg_cpu_ticks() {
  local i pid child total=0
  local -a children
  for ((i = 0; i < CLUSTERS; i++)); do
    [[ -f "${PGDIR}/c${i}/postmaster.pid" ]] || continue
    pid="$(head -n 1 "${PGDIR}/c${i}/postmaster.pid")"
    [[ -r "/proc/${pid}/stat" ]] || continue
    total=$((total + $(proc_ticks "${pid}")))
    read -ra children <"/proc/${pid}/task/${pid}/children" || true
    for child in "${children[@]}"; do
      total=$((total + $(proc_ticks "${child}")))
    done
  done
  printf '%s' "${total}"
}
# proc_ticks PID: utime + stime + cutime + cstime of PID (0 when it is gone). The fields come
# after the command name, which is in parentheses and may hold spaces.
proc_ticks() {
  local stat f
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { printf 0; return; }
  read -ra f <<<"${stat##*) }"
  printf '%s' "$((f[11] + f[12] + f[13] + f[14]))"
}

# measure PHASE CANDIDATE RUN PART -- COMMAND...: wall time, CPU time (the step's processes and
# the PostgreSQL servers' share) and peak RSS (largest process) of one step. Shell functions are
# run through this script's internal entry point.
measure() {
  local phase="$1" cand="$2" run="$3" part="$4" t0 t1 rc=0 pg0 pg1 rss user_s sys_s
  shift 5
  sync
  printf '\n==== %s %s run %s %s: %s\n' "${phase}" "${cand}" "${run}" "${part}" "$*" >>"${LOGFILE}"
  pg0="$(pg_cpu_ticks)"
  t0="$(date +%s%N)"
  /usr/bin/time -f '%M %U %S' -o "${WORK}/time.out" "$@" >>"${LOGFILE}" 2>&1 || rc=$?
  t1="$(date +%s%N)"
  pg1="$(pg_cpu_ticks)"
  if (( rc != 0 )); then
    log "FAILED (rc ${rc}): ${phase} ${cand} ${part}; last lines of the log:"
    tail -n 40 "${LOGFILE}" >&2
    return 1
  fi
  read -r rss user_s sys_s < <(tail -n 1 "${WORK}/time.out")
  record "${phase}" "${cand}" "${run}" "t:${part}" "$((t1 - t0))"
  record "${phase}" "${cand}" "${run}" "rss:${part}" "${rss}"
  # Milliseconds: /usr/bin/time prints seconds with two decimals; ticks are 1/CLK_TCK s.
  record "${phase}" "${cand}" "${run}" "cpu:${part}" \
    "$(( 10#${user_s/./} * 10 + 10#${sys_s/./} * 10 + (pg1 - pg0) * 1000 / CLK_TCK ))"
}

# ---- clusters ------------------------------------------------------------------------------------
setup_cluster() {
  local i="$1" d="${PGDIR}/c$1" port=$(($1 + PORT_BASE)) burn=$((($1 + 1) * BURN_STEP))
  as_pg "${PG_BIN}/initdb" -D "${d}" -U postgres --pwfile="${WORK}/superuser_pw" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync >>"${LOGFILE}" 2>&1
  cat >>"${d}/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${SOCK}'
max_wal_senders = 10
wal_level = replica
archive_mode = on
archive_command = 'pgbackrest --config=${PGBR_CONF} --stanza=svc${i} archive-push %p'
EOF
  printf 'host replication %s 127.0.0.1/32 scram-sha-256\n' "${REPL_USER}" >>"${d}/pg_hba.conf"
  as_pg "${PG_BIN}/pg_ctl" -D "${d}" -l "${WORK}/log/c${i}.log" -w start >>"${LOGFILE}" 2>&1
  psql_c "${i}" -c "CREATE ROLE ${REPL_USER} WITH LOGIN REPLICATION PASSWORD '$(cat "${SECRETS}/repl_pw")'" >/dev/null
  pgbr --stanza="svc${i}" stanza-create >>"${LOGFILE}" 2>&1
  # Different transaction ids in every cluster's tuples: Borg cannot deduplicate across services.
  psql_c "${i}" -c "DO \$\$ BEGIN FOR k IN 1..${burn} LOOP PERFORM txid_current(); COMMIT; END LOOP; END \$\$" >/dev/null
  if [[ "${PROFILE}" == cold ]]; then
    # The hot set: pgbench's tables at scale 1 (what the churn writes to); the rest of the data,
    # about as much as pgbench's scale SCALE, a table written once (distinct in every cluster)
    # and an index on it.
    as_pg "${PG_BIN}/pgbench" -h "${SOCK}" -p "${port}" -i -s 1 -q postgres >>"${LOGFILE}" 2>&1
    psql_c "${i}" -c "CREATE TABLE cold AS SELECT g AS id, g % 1000 AS kind, md5(g::text || '-${i}') AS payload,
        now() - g * interval '1 second' AS created FROM generate_series(1, ${SCALE} * 150000) g" \
      -c 'CREATE INDEX cold_created ON cold (created)' -c 'VACUUM ANALYZE cold' >/dev/null
  else
    as_pg "${PG_BIN}/pgbench" -h "${SOCK}" -p "${port}" -i -s "${SCALE}" -q postgres >>"${LOGFILE}" 2>&1
  fi
  psql_c "${i}" -c 'CHECKPOINT' >/dev/null
}

setup() {
  mkdir -p "${PGDIR}" "${SOCK}" "${MNT}" "${SECRETS}" "${PGBR}"/{repo,log,lock,spool} "${GEN}" "${BORGBASE}" \
    "${RESTORE_DIR}" "${WORK}/log" "${WORK}/cfg" "${WORK}/lock" "${WORK}/tmp"
  chmod 1777 "${WORK}/tmp"
  chmod 755 "${WORK}"
  chmod 700 "${SECRETS}"
  chown postgres: "${PGDIR}" "${SOCK}" "${RESTORE_DIR}" "${WORK}/log"
  chown -R postgres: "${PGBR}"
  random_secret >"${WORK}/superuser_pw"
  chown postgres: "${WORK}/superuser_pw"
  chmod 600 "${WORK}/superuser_pw"
  random_secret >"${SECRETS}/repl_pw"
  printf 'BORG_PASSPHRASE=%s\n' "$(random_secret)" >"${SECRETS}/borg.env"
  chmod 600 "${SECRETS}/repl_pw" "${SECRETS}/borg.env"
  # The generated scripts refuse an unmounted backup disk: make it a real mount point.
  mount --bind "${MNT}" "${MNT}"
  printf '%s\n' "${MNT}" >"${WORK}/mounted"
  cat >"${PGBR_CONF}" <<EOF
[global]
repo1-path=${PGBR}/repo
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=$(random_secret)
repo1-retention-full=1
compress-type=lz4
process-max=2
start-fast=y
log-path=${PGBR}/log
lock-path=${PGBR}/lock
spool-path=${PGBR}/spool
log-level-console=warn
log-level-file=off
EOF
  chown postgres: "${PGBR_CONF}"
  chmod 600 "${PGBR_CONF}"
  local i pids=()
  for ((i = 0; i < CLUSTERS; i++)); do
    printf '\n[svc%s]\npg1-path=%s\npg1-port=%s\npg1-socket-path=%s\npg1-user=postgres\n' \
      "${i}" "${PGDIR}/c${i}" "$((PORT_BASE + i))" "${SOCK}" >>"${PGBR_CONF}"
  done
  log "${CLUSTERS} clusters at once: initdb, burn xids, pgbench -i -s ${SCALE} (ports ${PORT_BASE}..$((PORT_BASE + CLUSTERS - 1)))"
  for ((i = 0; i < CLUSTERS; i++)); do
    setup_cluster "${i}" &
    pids+=("$!")
  done
  for i in "${pids[@]}"; do
    wait "${i}" || die "cluster set-up failed; see ${LOGFILE}"
  done
}

# Bytes of the data dirs without (with: $1 = all) the WAL segments in pg_wal.
data_bytes() {
  local i total=0
  for ((i = 0; i < CLUSTERS; i++)); do
    total=$((total + $(bytes_of "${PGDIR}/c${i}")))
    [[ "${1:-}" == all ]] || total=$((total - $(bytes_of "${PGDIR}/c${i}/pg_wal")))
  done
  printf '%s' "${total}"
}

# ---- generated scripts ---------------------------------------------------------------------------
# One pgb-gen build for every candidate: each candidate is a server of one config, with its own
# Borg repository and the one lever it measures against the defaults. GEN_SPECS:
# name|parallelJobs|compression|chunkerParams|encryption|rawReuse|reusedChecksums|filesCache|stablePath|edits
# ("-" keeps the schema default). Edits, for levers the config has no field for:
#   nofc     `borg create --files-cache disabled`
#   raw0     `retention.rawDays: 0`: only the newest raw backup is kept, so the night after is what
#            every night costs once retention deletes one backup a night
# gen-copy is the night before issue 14 (full raw copies, Borg's ctime files cache, no stage);
# gen-checkall checksums every file of each new base backup, the linked ones too (reusedChecksums check).
readonly GEN_SPECS=("gen-default|-|-|-|-|-|-|-|-|-" "gen-checkall|-|-|-|-|-|check|-|-|-"
  "gen-p1|1|-|-|-|-|-|-|-|-" "gen-zstd|-|zstd,3|-|-|-|-|-|-|-"
  "gen-buzhash|-|-|default|-|-|-|-|-|-" "gen-enc-repokey|-|-|-|repokey|-|-|-|-|-" "gen-enc-blake2|-|-|-|repokey-blake2|-|-|-|-|-"
  "gen-nofc|-|-|-|-|-|-|-|-|nofc" "gen-copy|-|-|-|-|copy|-|ctime,size,inode|false|-"
  "gen-ctime|-|-|-|-|-|-|ctime,size,inode|false|-" "gen-nostage|-|-|-|-|-|-|-|false|-"
  "gen-r0|-|-|-|-|-|-|-|-|raw0" "gen-r0-nostage|-|-|-|-|-|-|-|false|raw0")
gen_all() {
  local cfg="${WORK}/cfg/candidates.yaml" spec name parallel compression chunker encryption reuse reused_checksums files_cache stable edits bin_root borg_extra i
  log "generating the scripts of every candidate with one pgb-gen build"
  bin_root="$(dirname "$(dirname "${PG_BIN}")")"
  {
    printf 'version: 1\nservers:\n'
    for spec in "${GEN_SPECS[@]}"; do
      IFS='|' read -r name parallel compression chunker encryption reuse reused_checksums files_cache stable edits <<<"${spec}"
      borg_extra=""
      [[ "${files_cache}" == - ]] || borg_extra+=", filesCache: \"${files_cache}\""
      [[ "${stable}" == - ]] || borg_extra+=", stablePath: ${stable}"
      [[ "${compression}" == - ]] || borg_extra+=", compression: \"${compression}\""
      [[ "${chunker}" == - ]] || borg_extra+=", chunkerParams: \"${chunker}\""
      [[ "${encryption}" == - ]] || borg_extra+=", encryption: ${encryption}"
      printf '  - name: %s\n    host: 127.0.0.1\n' "${name}"
      printf '    paths: { backupMount: %s, artifacts: %s, configArtifacts: %s, lockFile: %s, pgBinRoot: %s }\n' \
        "${MNT}" "${ART}" "${CFGART}" "${WORK}/lock/bench.lock" "${bin_root}"
      printf '    repos: { primary: %s, external: null }\n' "$(repo_of "${name}")"
      printf '    borg: { passphraseFile: %s%s }\n' "${SECRETS}/borg.env" "${borg_extra}"
      printf '    replication: { user: %s, passwordFile: %s, allowedSubnet: 127.0.0.1/32 }\n' "${REPL_USER}" "${SECRETS}/repl_pw"
      printf '    retention: { rawDays: %s, keepDaily: 7, keepWeekly: 4, keepMonthly: 6 }\n' "$([[ ",${edits}," == *,raw0,* ]] && echo 0 || echo 3)"
      [[ "${parallel}" == - ]] || printf '    parallelJobs: %s\n' "${parallel}"
      [[ "${reuse}" == - ]] || printf '    rawReuse: %s\n' "${reuse}"
      [[ "${reused_checksums}" == - ]] || printf '    reusedChecksums: %s\n' "${reused_checksums}"
      printf '    services:\n'
      for ((i = 0; i < CLUSTERS; i++)); do
        printf '      - { name: svc%s, port: %s, pgVersion: %s, wal: false }\n' "${i}" "$((PORT_BASE + i))" "${PG_VERSION}"
      done
    done
  } >"${cfg}"
  node "${ROOT}/dist/cli/main.js" build -c "${cfg}" -o "${GEN}" >>"${LOGFILE}" 2>&1 || die "pgb-gen build failed (config ${cfg})"
  for spec in "${GEN_SPECS[@]}"; do
    IFS='|' read -r name parallel compression chunker encryption reuse reused_checksums files_cache stable edits <<<"${spec}"
    [[ -f "$(sbin_of "${name}")/pg_backup_all.sh" ]] || die "no pg_backup_all.sh generated for ${name}"
    if [[ ",${edits}," == *,nofc,* ]]; then edit_nofc "$(sbin_of "${name}")/borg_pg_artifacts.sh"; fi
  done
}

# The files-cache lever: `borg create --files-cache disabled` (day 2 re-reads the older raw backups).
edit_nofc() {
  sed -i 's/ --files-cache [^ ]* / --files-cache disabled /' "$1"
  grep -q -- '--files-cache disabled' "$1" || die "could not add --files-cache disabled to $1 (its borg create line changed?)"
}

# The resolved value of a readonly constant in a generated script.
script_const() {
  sed -n "s/^readonly $2=//p" "$(sbin_of "$1")/$3" | tr -d "'"
}

# fresh_repo CAND [ENCRYPTION]: a new repository for a candidate, with the encryption given, else
# the one its generated pgb_repo_init.sh would use, else the runbook's repokey-blake2.
fresh_repo() {
  local cand="$1" encryption="${2:-repokey-blake2}"
  if [[ -z "${2:-}" && -f "$(sbin_of "${cand}")/pgb_repo_init.sh" ]]; then
    encryption="$(script_const "${cand}" ENCRYPTION pgb_repo_init.sh)"
  fi
  rm -rf "$(repo_of "${cand}")" "${BORGBASE:?}/${cand}"
  mkdir -p "${BORGBASE}/${cand}"
  bborg "${cand}" init --encryption "${encryption}" "$(repo_of "${cand}")" >>"${LOGFILE}" 2>&1
}

fresh_artifacts() {
  rm -rf "${ART}" "${CFGART}" "${MNT}/runbook" "${MNT}/proto" "${MNT}/proto-repos" "${MNT}/.pgb-borg-stage"
}

# ---- candidates (entry points for `measure`) -----------------------------------------------------
do_tar() {
  local out="${WORK}/tar/data.tar"
  mkdir -p "${WORK}/tar"
  rm -f "${out}"
  # What a base backup copies: the data dirs without the WAL segments kept in pg_wal.
  tar -cf "${out}" --exclude='*/pg_wal/*' -C "${PGDIR}" "${@}"
  sync "${out}"
}

do_gen_backup() { bash "$(sbin_of "$1")/pg_backup_all.sh"; }
do_gen_borg() { BORG_BASE_DIR="${BORGBASE}/$1" bash "$(sbin_of "$1")/borg_pg_artifacts.sh" primary; }

# The runbook: plain pg_basebackup one service after another ...
do_runbook_backup() {
  local i stamp
  stamp="$(date -u +%Y-%m-%dT%H_%M_%SZ)"
  mkdir -p "${MNT}/runbook"
  for ((i = 0; i < CLUSTERS; i++)); do
    PGPASSFILE="${WORK}/pgpass" "${PG_BIN}/pg_basebackup" -h 127.0.0.1 -p "$((PORT_BASE + i))" -U "${REPL_USER}" -w \
      -D "${MNT}/runbook/svc${i}_${stamp}" -Fp -X stream -c fast
  done
}
# ... then one borg create --compression lz4 of everything.
do_runbook_borg() {
  local src="$1"
  bborg runbook create --stats --compression lz4 "$(repo_of runbook)::runbook-$(date -u +%Y-%m-%dT%H:%M:%S.%N)" "${src}"
}

# Prototype of two levers the template does not have yet: one archive per service, and each
# service's archive made while the next service's base backup runs (backups one at a time).
do_proto_overlap() {
  local compression="$1" chunker="$2" i stamp dir borg_pid="" repo
  repo="$(repo_of proto)"
  stamp="$(date -u +%Y-%m-%dT%H_%M_%SZ)"
  mkdir -p "${MNT}/proto"
  for ((i = 0; i < CLUSTERS; i++)); do
    dir="${MNT}/proto/svc${i}_basebackup_${stamp}"
    PGPASSFILE="${WORK}/pgpass" "${PG_BIN}/pg_basebackup" -h 127.0.0.1 -p "$((PORT_BASE + i))" -U "${REPL_USER}" -w \
      -D "${dir}.tmp" -Fp -X stream -c fast --no-sync
    "${PG_BIN}/pg_verifybackup" -q "${dir}.tmp"
    sync -f "${dir}.tmp"
    mv -T "${dir}.tmp" "${dir}"
    if [[ -n "${borg_pid}" ]]; then wait "${borg_pid}"; fi
    bborg proto create --compression "${compression}" --chunker-params "${chunker}" \
      "${repo}::proto-svc${i}-${stamp}" "${dir}" &
    borg_pid=$!
  done
  wait "${borg_pid}"
  bborg proto prune --keep-daily 7 --keep-weekly 4 --keep-monthly 6 "${repo}"
  bborg proto compact "${repo}"
}

# Prototype of per-service repositories: every service runs its own pipeline at once (base
# backup, verify, flush, promote, then `borg create` of its raw backups into its own repository,
# prune, compact), so Borg, single threaded, gets every core. Defaults' compression and chunker.
do_proto_repos() {
  local compression="$1" chunker="$2" i stamp pids=() pid
  stamp="$(date -u +%Y-%m-%dT%H_%M_%SZ)"
  mkdir -p "${MNT}/proto-repos"
  for ((i = 0; i < CLUSTERS; i++)); do
    proto_repos_one "${i}" "${stamp}" "${compression}" "${chunker}" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do
    wait "${pid}"
  done
}
proto_repos_one() {
  local i="$1" stamp="$2" compression="$3" chunker="$4" dir
  dir="${MNT}/proto-repos/svc${i}_basebackup_${stamp}"
  PGPASSFILE="${WORK}/pgpass" "${PG_BIN}/pg_basebackup" -h 127.0.0.1 -p "$((PORT_BASE + i))" -U "${REPL_USER}" -w \
    -D "${dir}.tmp" -Fp -X stream -c fast --no-sync
  "${PG_BIN}/pg_verifybackup" -q "${dir}.tmp"
  sync -f "${dir}.tmp"
  mv -T "${dir}.tmp" "${dir}"
  proto_repos_archive "proto-repos-svc${i}" "${stamp}" "${compression}" "${chunker}" prune "${MNT}/proto-repos/svc${i}_basebackup_"*
}

# The same repositories, archived after the generated pg_backup_all.sh made every base backup
# (what two scripts, one after the other, can do): one Borg per service at once. `-create`: the
# night only creates; prune and compact would run from a weekly unit.
do_proto_repos_after() { proto_repos_after_backups proto-repos-after "$1" "$2" prune; }
do_proto_repos_create() { proto_repos_after_backups proto-repos-create "$1" "$2" no-prune; }
proto_repos_after_backups() {
  local cand="$1" compression="$2" chunker="$3" prune="$4" i stamp pids=() pid
  do_gen_backup gen-default
  stamp="$(date -u +%Y-%m-%dT%H_%M_%SZ)"
  for ((i = 0; i < CLUSTERS; i++)); do
    proto_repos_archive "${cand}-svc${i}" "${stamp}" "${compression}" "${chunker}" "${prune}" \
      "${ART}/basebackups/svc${i}_basebackup_"* &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do
    wait "${pid}"
  done
}
# proto_repos_archive CAND STAMP COMPRESSION CHUNKER prune|no-prune SOURCE...: create, then prune
# and compact unless no-prune.
proto_repos_archive() {
  local cand="$1" stamp="$2" compression="$3" chunker="$4" prune="$5" repo
  shift 5
  repo="$(repo_of "${cand}")"
  bborg "${cand}" create --compression "${compression}" --chunker-params "${chunker}" "${repo}::${cand}-${stamp}" "$@"
  [[ "${prune}" == prune ]] || return 0
  bborg "${cand}" prune --keep-daily 7 --keep-weekly 4 --keep-monthly 6 "${repo}"
  bborg "${cand}" compact "${repo}"
}

do_pgbr() {
  local type="$1" i
  for ((i = 0; i < CLUSTERS; i++)); do
    pgbr --stanza="svc${i}" --type="${type}" backup
  done
}

do_churn() {
  local i
  for ((i = 0; i < CLUSTERS; i++)); do
    as_pg "${PG_BIN}/pgbench" -h "${SOCK}" -p "$((PORT_BASE + i))" -n -c 1 -t "${CHURN_TX}" postgres
  done
}

# Starts a restored data dir and waits until it accepts read-write connections.
start_restored() {
  local dest="$1" port="$2" state="" deadline
  as_pg "${PG_BIN}/pg_ctl" -D "${dest}" -l "${dest}.log" -W \
    -o "-p ${port} -c listen_addresses='' -c unix_socket_directories='${SOCK}' -c archive_mode=off" start
  deadline=$((SECONDS + 600))
  until [[ "${state}" == f ]]; do
    (( SECONDS < deadline )) || { cat "${dest}.log"; return 1; }
    sleep 0.02
    state="$(as_pg "${PG_BIN}/psql" -h "${SOCK}" -p "${port}" -d postgres -qAtX -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)"
  done
}

newest_raw() { find "${ART}/basebackups" -mindepth 1 -maxdepth 1 -type d -name "$1_basebackup_*" | sort | tail -n 1; }

# A bare `borg extract` of svc0's newest base backup (do_restore_borg: under basebackups/, its name
# read from the disk; do_restore_stage: the stable stage path, known without listing the archive).
do_restore_borg() { restore_borg_path "$1" "$(newest_raw svc0)" "$2" "$3"; }
do_restore_stage() { restore_borg_path "$1" "${MNT}/.pgb-borg-stage/svc0" "$2" "$3"; }
restore_borg_path() {
  local cand="$1" rel="${2#/}" dest="$3" port="$4" archive
  archive="$(bborg "${cand}" list --last 1 --short "$(repo_of "${cand}")")"
  mkdir -p "${dest}"
  (cd "${dest}" && bborg "${cand}" extract --strip-components "$(awk -F/ '{print NF}' <<<"${rel}")" \
    "$(repo_of "${cand}")::${archive}" "${rel}")
  chown -R postgres: "${dest}"
  chmod 700 "${dest}"
  start_restored "${dest}" "${port}"
}

# The generated pgb-restore.sh of a candidate, from its repository's newest archive (with
# restoreJobs N when given: the copy's RESTORE_JOBS constant), then started like the others.
do_restore_script() {
  local cand="$1" jobs="$2" dest="$3" port="$4" script="${WORK}/pgb-restore-$1-$2.sh"
  cp "$(sbin_of "${cand}")/pgb-restore.sh" "${script}"
  if [[ "${jobs}" != - ]]; then
    sed -i "s/^readonly RESTORE_JOBS=.*/readonly RESTORE_JOBS=${jobs}/" "${script}"
    grep -qx "readonly RESTORE_JOBS=${jobs}" "${script}" || die "no RESTORE_JOBS constant in ${script}"
  fi
  BORG_BASE_DIR="${BORGBASE}/${cand}" bash "${script}" restore --service svc0 --dest "${dest}" --from primary
  chown -R postgres: "${dest}" "${dest}-wal"
  start_restored "${dest}" "${port}"
}

do_restore_raw() {
  local dest="$1" port="$2"
  cp -a "$(newest_raw svc0)" "${dest}"
  chown -R postgres: "${dest}"
  chmod 700 "${dest}"
  start_restored "${dest}" "${port}"
}

do_restore_pgbr() {
  local dest="$1" port="$2"
  install -d -m 700 -o postgres -g postgres "${dest}"
  pgbr --stanza=svc0 --pg1-path="${dest}" --type=immediate --target-action=promote restore
  start_restored "${dest}" "${port}"
}

stop_restored() {
  local dest="$1"
  if [[ -f "${dest}/postmaster.pid" ]]; then
    as_pg "${PG_BIN}/pg_ctl" -D "${dest}" -m immediate -w stop >>"${LOGFILE}" 2>&1 || true
  fi
  rm -rf "${dest}" "${dest}.log" "${dest}-wal"
}


# ---- phases --------------------------------------------------------------------------------------
# rotate N ITEM...: the items rotated left by N (alternating candidates between runs).
rotate() {
  local n="$1"
  shift
  local items=("$@") k
  k=$((n % ${#items[@]}))
  printf '%s\n' "${items[@]:k}" "${items[@]:0:k}"
}

# Nightly: for each candidate a first night into a fresh repository (day 1), then the night
# after (phase nightly2: new base backups, the repository holding night 1, no churn between:
# what every later night costs; pgBackRest takes an incremental backup then).
phase_nightly() {
  local run cand name phase clusters=() i cands=("${NIGHTLY[@]}")
  for ((i = 0; i < CLUSTERS; i++)); do clusters+=("c${i}"); done
  for ((run = 1; run <= RUNS; run++)); do
    log "nightly run ${run}/${RUNS}"
    while IFS= read -r cand; do
      fresh_artifacts
      case "${cand}" in
        tar) measure nightly tar "${run}" total -- bash "${STEP_SCRIPT}" __call do_tar "${clusters[@]}" ;;
        runbook)
          fresh_repo runbook
          for phase in nightly nightly2; do
            measure "${phase}" runbook "${run}" backup -- bash "${STEP_SCRIPT}" __call do_runbook_backup
            measure "${phase}" runbook "${run}" borg -- bash "${STEP_SCRIPT}" __call do_runbook_borg "${MNT}/runbook"
          done
          ;;
        pgbackrest)
          measure nightly pgbackrest "${run}" total -- bash "${STEP_SCRIPT}" __call do_pgbr full
          measure nightly2 pgbackrest "${run}" total -- bash "${STEP_SCRIPT}" __call do_pgbr incr
          ;;
        proto-overlap)
          fresh_repo proto "$(script_const gen-default ENCRYPTION pgb_repo_init.sh)"
          for phase in nightly nightly2; do
            measure "${phase}" proto-overlap "${run}" total -- bash "${STEP_SCRIPT}" __call do_proto_overlap \
              "$(script_const gen-default COMPRESSION borg_pg_artifacts.sh)" "$(script_const gen-default CHUNKER_PARAMS borg_pg_artifacts.sh)"
          done
          ;;
        proto-repos | proto-repos-after | proto-repos-create)
          for ((i = 0; i < CLUSTERS; i++)); do
            fresh_repo "${cand}-svc${i}" "$(script_const gen-default ENCRYPTION pgb_repo_init.sh)"
          done
          for phase in nightly nightly2; do
            if [[ "${phase}" == nightly2 ]]; then sleep 1; fi
            measure "${phase}" "${cand}" "${run}" total -- bash "${STEP_SCRIPT}" __call "do_${cand//-/_}" \
              "$(script_const gen-default COMPRESSION borg_pg_artifacts.sh)" "$(script_const gen-default CHUNKER_PARAMS borg_pg_artifacts.sh)"
            record "${phase}" "${cand}" "${run}" bytes:repo "$(repo_bytes_of "${cand}")"
          done
          ;;
        *)
          name="${cand}"
          fresh_repo "${name}"
          for phase in nightly nightly2; do
            # Night 2 must not share night 1's UTC second (backup and archive names carry it).
            if [[ "${phase}" == nightly2 ]]; then sleep 1; fi
            measure "${phase}" "${name}" "${run}" backup -- bash "${STEP_SCRIPT}" __call do_gen_backup "${name}"
            measure "${phase}" "${name}" "${run}" borg -- bash "${STEP_SCRIPT}" __call do_gen_borg "${name}"
            record "${phase}" "${name}" "${run}" bytes:repo "$(bytes_of "$(repo_of "${name}")")"
          done
          ;;
      esac
    done < <(rotate "$((run - 1))" "${cands[@]}")
  done
  rm -rf "${WORK}/tar"
}

pgbr_backup_bytes() {
  local i total=0
  for ((i = 0; i < CLUSTERS; i++)); do
    total=$((total + $(bytes_of "${PGBR}/repo/backup/svc${i}")))
  done
  printf '%s' "${total}"
}

phase_growth() {
  local run cand before after arch_before cands
  cands=("${GROWTH[@]}")
  for ((run = 1; run <= RUNS; run++)); do
    log "day 1 / day 2 run ${run}/${RUNS}"
    fresh_artifacts
    measure day1 raw "${run}" backup -- bash "${STEP_SCRIPT}" __call do_gen_backup gen-default
    while IFS= read -r cand; do
      case "${cand}" in
        pgbackrest)
          measure day1 pgbackrest "${run}" total -- bash "${STEP_SCRIPT}" __call do_pgbr full
          record day1 pgbackrest "${run}" bytes:repo "$(pgbr_backup_bytes)"
          ;;
        runbook)
          fresh_repo runbook
          measure day1 runbook "${run}" borg -- bash "${STEP_SCRIPT}" __call do_runbook_borg "${ART}"
          record day1 runbook "${run}" bytes:repo "$(bytes_of "$(repo_of runbook)")"
          ;;
        *)
          fresh_repo "${cand}"
          measure day1 "${cand}" "${run}" borg -- bash "${STEP_SCRIPT}" __call do_gen_borg "${cand}"
          record day1 "${cand}" "${run}" bytes:repo "$(bytes_of "$(repo_of "${cand}")")"
          ;;
      esac
    done < <(rotate "$((run - 1))" "${cands[@]}")

    measure churn pgbench "${run}" total -- bash "${STEP_SCRIPT}" __call do_churn
    measure day2 raw "${run}" backup -- bash "${STEP_SCRIPT}" __call do_gen_backup gen-default
    while IFS= read -r cand; do
      case "${cand}" in
        pgbackrest)
          before="$(pgbr_backup_bytes)"
          arch_before="$(bytes_of "${PGBR}/repo/archive")"
          measure day2 pgbackrest "${run}" total -- bash "${STEP_SCRIPT}" __call do_pgbr incr
          after="$(pgbr_backup_bytes)"
          record day2 pgbackrest "${run}" bytes:growth "$((after - before))"
          record day2 pgbackrest "${run}" bytes:wal-archive-growth "$(($(bytes_of "${PGBR}/repo/archive") - arch_before))"
          ;;
        *)
          before="$(bytes_of "$(repo_of "${cand}")")"
          if [[ "${cand}" == runbook ]]; then
            measure day2 runbook "${run}" borg -- bash "${STEP_SCRIPT}" __call do_runbook_borg "${ART}"
          else
            measure day2 "${cand}" "${run}" borg -- bash "${STEP_SCRIPT}" __call do_gen_borg "${cand}"
          fi
          record day2 "${cand}" "${run}" bytes:growth "$(($(bytes_of "$(repo_of "${cand}")") - before))"
          ;;
      esac
    done < <(rotate "$((run - 1))" "${cands[@]}")

    phase_restore "${run}"
  done
}

# Raw disk and the pull, per rawReuse mode: three nights of raw base backups with the churn before
# nights 2 and 3; bytes on the backup disk after night 1 and after night 3 (du counts a hard-linked
# file once). A pull mirrors the artifacts tree after each night, as the dev pull does (rsync -a
# --delete; --no-whole-file as over ssh), with -H (hard links kept), and as the dev pull's default
# pullBasis previous does it (basis): the bytes rsync sends for night 2.
phase_raw() {
  local cand night flags pull
  log "raw disk and pull: three nights per rawReuse mode"
  for cand in "${RAW[@]}"; do
    fresh_artifacts
    rm -rf "${WORK}"/pull-*
    for night in 1 2 3; do
      if (( night > 1 )); then
        measure "raw${night}" churn 1 total -- bash "${STEP_SCRIPT}" __call do_churn
        sleep 1
      fi
      measure "raw${night}" "${cand}" 1 backup -- bash "${STEP_SCRIPT}" __call do_gen_backup "${cand}"
      record "raw${night}" "${cand}" 1 bytes:raw "$(bytes_of "${ART}/basebackups")"
      (( night <= 2 )) || continue
      for flags in -a -aH basis "${PULL_COMPRESS[@]/#/basis-}"; do
        pull="${WORK}/pull${flags}"
        record "raw${night}" "${cand}" 1 "bytes:pull${flags}" "$(pull_sent "${flags}" "${pull}")"
        record "raw${night}" "${cand}" 1 "cpu:pull${flags}" "$(cat "${WORK}/pull.cpu")"
      done
    done
  done
  rm -rf "${WORK}"/pull-*
}
# pull_sent FLAGS DEST: mirrors the artifacts tree into DEST with rsync FLAGS; prints the bytes sent
# (rsync's own count: compressed when compressing) and leaves rsync's CPU ms in ${WORK}/pull.cpu.
# FLAGS "basis" is the dev pull's pullBasis previous: each new backup first made in DEST as hard
# links of the newest older backup of its service there, then rsync -a --fuzzy --delete-delay;
# "basis-C" the same with rsync --compress --compress-choice=C (C: zstd, lz4, zlibx...).
pull_sent() {
  local name prev user_s sys_s
  local -a flags=("$1")
  mkdir -p "$2/basebackups"
  if [[ "$1" == basis* ]]; then
    flags=(-a --fuzzy --delete-delay)
    [[ "$1" == basis ]] || flags+=(--compress "--compress-choice=${1#basis-}")
    while IFS= read -r name; do
      [[ ! -e "$2/basebackups/${name}" ]] || continue
      prev="$(find "$2/basebackups" -mindepth 1 -maxdepth 1 -type d -name "${name%%_basebackup_*}_basebackup_*" -printf '%f\n' \
        | sort | awk -v n="${name}" '$0 < n' | tail -n 1)"
      [[ -z "${prev}" ]] || cp -al -- "$2/basebackups/${prev}" "$2/basebackups/${name}"
    done < <(find "${ART}/basebackups" -mindepth 1 -maxdepth 1 -type d -name '*_basebackup_*' -printf '%f\n' | sort)
  fi
  /usr/bin/time -f '%U %S' -o "${WORK}/pull.time" rsync "${flags[@]}" --delete --no-whole-file --stats "${ART}/" "$2/" \
    | sed -n 's/^Total bytes sent: \([0-9,]*\).*/\1/p' | tr -d ,
  read -r user_s sys_s < <(tail -n 1 "${WORK}/pull.time")
  printf '%s\n' "$(( 10#${user_s/./} * 10 + 10#${sys_s/./} * 10 ))" >"${WORK}/pull.cpu"
}

phase_restore() {
  local run="$1" cand dest="${RESTORE_DIR}/data" cands spec jobs
  cands=("${RESTORE[@]}")
  while IFS= read -r cand; do
    stop_restored "${dest}"
    case "${cand}" in
      raw) measure restore raw "${run}" total -- bash "${STEP_SCRIPT}" __call do_restore_raw "${dest}" "${RESTORE_PORT}" ;;
      pgbackrest) measure restore pgbackrest "${run}" total -- bash "${STEP_SCRIPT}" __call do_restore_pgbr "${dest}" "${RESTORE_PORT}" ;;
      stage:*) measure restore "${cand}" "${run}" total -- bash "${STEP_SCRIPT}" __call do_restore_stage "${cand#stage:}" "${dest}" "${RESTORE_PORT}" ;;
      script:*)
        IFS=: read -r _ spec jobs <<<"${cand}"
        measure restore "${cand}" "${run}" total -- \
          bash "${STEP_SCRIPT}" __call do_restore_script "${spec}" "${jobs:--}" "${dest}" "${RESTORE_PORT}"
        ;;
      *) measure restore "${cand}" "${run}" total -- bash "${STEP_SCRIPT}" __call do_restore_borg "${cand}" "${dest}" "${RESTORE_PORT}" ;;
    esac
    stop_restored "${dest}"
  done < <(rotate "$((run - 1))" "${cands[@]}")
}

phase_build() {
  local i run cand
  {
    printf 'version: 1\nservers:\n  - name: big\n    services:\n'
    for ((i = 0; i < BUILD_SERVICES; i++)); do
      printf '      - { name: service_%03d, port: %s, pgVersion: 15 }\n' "${i}" "$((20000 + i))"
    done
  } >"${WORK}/cfg/build100.yaml"
  mkdir -p "${WORK}/build100"
  log "build: pgb-gen build of ${BUILD_SERVICES} services vs node -e 0 (${BUILD_RUNS} runs)"
  for ((run = 1; run <= BUILD_RUNS; run++)); do
    while IFS= read -r cand; do
      case "${cand}" in
        node) measure build node-e-0 "${run}" total -- node -e 0 ;;
        build)
          # The installed command (package.json "bin"), as operators run it.
          measure build pgb-gen-build "${run}" total -- \
            "${ROOT}/bin/pgb-gen.cjs" build -c "${WORK}/cfg/build100.yaml" -o "${WORK}/build100/out${run}"
          ;;
      esac
    done < <(rotate "$((run - 1))" node build)
  done
  [[ -f "${WORK}/build100/out1/big/root/usr/local/sbin/pg_backup_all.sh" ]] || die "the 100-service build wrote no pg_backup_all.sh"
}

# ---- clean-up ------------------------------------------------------------------------------------
cleanup() {
  local rc=$? pid_file d
  set +e
  if [[ -n "${WORK:-}" && -d "${WORK}" ]]; then
    for pid_file in "${RESTORE_DIR}"/*/postmaster.pid "${PGDIR}"/*/postmaster.pid; do
      [[ -f "${pid_file}" ]] || continue
      d="$(dirname "${pid_file}")"
      as_pg "${PG_BIN}/pg_ctl" -D "${d}" -m immediate -w stop >/dev/null 2>&1
    done
    if [[ -f "${WORK}/mounted" ]]; then
      umount "$(cat "${WORK}/mounted")" && rm -f "${WORK}/mounted"
    fi
    if [[ -n "${KEEP}" ]]; then
      log "work directory kept: ${WORK}"
    elif [[ ! -f "${WORK}/mounted" ]]; then
      rm -rf "${WORK}"
    fi
  fi
  exit "${rc}"
}

main() {
  parse_args "$@"
  cd "${ROOT}"
  if [[ "${PROFILE}" == both ]]; then
    # One profile after the other, each a whole run of its own (clusters, work dir, report).
    local rc=0
    bash "${SELF}" "$@" --profile uniform || rc=$?
    bash "${SELF}" "$@" --profile cold || rc=$?
    return "${rc}"
  fi
  if [[ "${EUID}" -ne 0 ]]; then
    die "run as root (the generated scripts, pg_ctl as postgres and mount --bind need it)"
  fi
  local started=${SECONDS}
  ensure_packages
  find_pg
  build_generator
  WORK="$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/pgb-bench.XXXXXX")"
  BENCH_CLUSTERS="${CLUSTERS}"
  BENCH_CHURN_TX="${CHURN_TX}"
  BENCH_PORT_BASE="${PORT_BASE}"
  BENCH_RESTORE_PORT="${RESTORE_PORT}"
  BENCH_ROOT="${ROOT}"
  BENCH_PROFILE="${PROFILE}"
  export WORK PG_BIN PG_VERSION BENCH_CLUSTERS BENCH_CHURN_TX BENCH_PORT_BASE BENCH_RESTORE_PORT BENCH_ROOT BENCH_PROFILE
  set_paths
  # Steps run from a copy: editing the checkout during a run changes nothing in it.
  STEP_SCRIPT="${WORK}/run.sh"
  cp "${SELF}" "${STEP_SCRIPT}"
  cp "${ROOT}/bench/report.mjs" "${WORK}/report.mjs"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  : >"${RESULTS}"
  : >"${META}"
  log "mode ${MODE}, profile ${PROFILE}: ${CLUSTERS} clusters at scale ${SCALE}, ${RUNS} run(s), work dir ${WORK}"
  setup
  write_pgpass
  gen_all

  meta mode "${MODE}"
  meta profile "${PROFILE}"
  meta clusters "${CLUSTERS}"
  meta scale "${SCALE}"
  meta runs "${RUNS}"
  meta churn "${CHURN_TX}"
  meta data_bytes "$(data_bytes)"
  meta data_bytes_with_wal "$(data_bytes all)"
  meta fs "$(findmnt -rn -o FSTYPE --target "${WORK}" | head -n 1)"
  meta cpus "$(nproc)"
  meta versions "PostgreSQL ${PG_VERSION}, $(borg --version), pgBackRest $(pgbackrest version | awk '{print $2}'), node $(node --version)"
  meta defaults "parallelJobs $(script_const gen-default PARALLEL_JOBS pg_backup_all.sh), compression $(script_const gen-default COMPRESSION borg_pg_artifacts.sh), chunkerParams $(script_const gen-default CHUNKER_PARAMS borg_pg_artifacts.sh)"

  if [[ ",${ONLY}," == *,nightly,* ]]; then phase_nightly; fi
  if [[ ",${ONLY}," == *,growth,* ]]; then phase_growth; fi
  if [[ ",${ONLY}," == *,raw,* ]]; then phase_raw; fi
  # The build does not depend on the data: measured with the first profile only.
  if [[ ",${ONLY}," == *,build,* && "${PROFILE}" == uniform ]]; then phase_build; fi
  meta elapsed "$((SECONDS - started))"
  node "${WORK}/report.mjs" "${RESULTS}" "${META}"
}

write_pgpass() {
  (umask 077 && printf '*:*:*:%s:%s\n' "${REPL_USER}" "$(cat "${SECRETS}/repl_pw")" >"${WORK}/pgpass")
}

# Internal entry point: `run.sh __call FUNCTION ARGS...` runs one step under /usr/bin/time.
if [[ "${1:-}" == __call ]]; then
  CLUSTERS="${BENCH_CLUSTERS}"
  CHURN_TX="${BENCH_CHURN_TX}"
  PROFILE="${BENCH_PROFILE}"
  set_paths
  # A private TMPDIR: pg_backup_all.sh removes the run dirs of its server name it finds there (a
  # killed run's), and another bench on the same machine uses the same server names.
  export TMPDIR="${WORK}/tmp"
  fn="$2"
  shift 2
  "${fn}" "$@"
  exit
fi

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
  exit  # before bash reads on in a file that may have been edited during the run
fi
