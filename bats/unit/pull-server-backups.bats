#!/usr/bin/env bats
# Unit suite of the generated pull-server-backups.sh (dev machine "devbox" pulling servers
# "alpha" and "beta"). rsync and ssh are PATH stubs that stand in for the network: the rsync stub
# runs the ssh command it was given with -e (so the ssh stub logs the options as ssh would get
# them) and then serves each server's files from a local tree, REMOTE/<host>/<module>/<path>
# (USER@HOST::MODULE/PATH, rsync's daemon over ssh), copying with the real rsync and the options
# the script gave it (so modes, links, special files and --dry-run --stats are rsync's own).
# pg_verifybackup is a stub under the dev's pgBinRoot that checks the backup's files against the
# sha256 list in its backup_manifest (what the real one does with its manifest's checksums).

# Stub knobs are exported per test on purpose: each test runs in its own process.
# shellcheck disable=SC2030,SC2031

load helpers

setup_file() {
  ut_setup_file
}

teardown_file() {
  ut_teardown_file
}

# ssh stub: hosts in SSH_DOWN_HOSTS refuse the connection (rc 255).
make_ssh_stub() {
  # shellcheck disable=SC2016
  make_stub "${STUB_BIN}/ssh" '
dest="" port=""
while (( $# )); do
  case "$1" in
    -p) port="$2"; shift ;;
    -i | -o) shift ;;
    -*) ;;
    *) dest="$1"; break ;;
  esac
  shift
done
host="${dest#*@}"
if [[ " ${SSH_DOWN_HOSTS:-} " == *" ${host} "* ]]; then
  printf "ssh: connect to host %s port %s: Connection refused\n" "${host}" "${port}" >&2
  exit 255
fi'
}

# rsync stub: USER@HOST::MODULE/PATH is served from REMOTE/HOST/MODULE/PATH after the -e ssh
# command succeeded; any other form of source is an error (the server has only the daemon).
# --list-only lists with the real rsync, of a missing path it fails as rsync does (rc 23); hosts in RSYNC_FAIL_HOSTS fail the
# copy itself (rc 23) after the listing worked.
make_rsync_stub() {
  local real
  real="$(command -v rsync)"
  # shellcheck disable=SC2016
  make_stub "${STUB_BIN}/rsync" '
e="" list=0
opts=()
pos=()
while (( $# )); do
  case "$1" in
    -e) e="$2"; shift ;;
    --list-only) list=1 ;;
    -*) opts+=("$1") ;;
    *) pos+=("$1") ;;
  esac
  shift
done
src="${pos[0]}"
if [[ "${src}" != *::* ]]; then
  printf "rsync stub: not a daemon-over-ssh source: %s\n" "${src}" >&2
  exit 1
fi
userhost="${src%%::*}"
rel="${src#*::}"
host="${userhost#*@}"
read -ra ssh_cmd <<<"${e:-ssh}"
if ! "${ssh_cmd[@]}" "${userhost}" rsync --server --daemon .; then
  printf "rsync: connection unexpectedly closed (0 bytes received so far) [Receiver]\n" >&2
  exit 255
fi
remote="${REMOTE}/${host}/${rel}"
if (( list )); then
  if [[ ! -e "${remote}" ]]; then
    printf "rsync: [sender] link_stat \"%s\" failed: No such file or directory (2)\n" "${rel}" >&2
    exit 23
  fi
  exec '"$(printf '%q' "${real}")"' --list-only "${opts[@]}" "${remote}"
fi
if [[ " ${RSYNC_FAIL_HOSTS:-} " == *" ${host} "* && " ${opts[*]} " != *" --dry-run "* ]]; then
  # What a transfer killed by a full disk leaves: a partial file and a temp file.
  mkdir -p "${pos[1]}/.rsync-partial"
  head -c 4096 /dev/zero >"${pos[1]}/.rsync-partial/16384"
  head -c 4096 /dev/zero >"${pos[1]}/.16384.AbC123"
  printf "rsync: write failed: No space left on device (28)\n" >&2
  exit 23
fi
exec '"$(printf '%q' "${real}")"' "${opts[@]}" "${remote}" "${pos[1]}"'
}

# pg_verifybackup stub: the backup's files must match the sha256 list of its backup_manifest.
make_verify_stub() {
  # shellcheck disable=SC2016
  make_stub "${PG_BIN_ROOT}/15/bin/pg_verifybackup" '
dir="${!#}"
[[ -f "${dir}/backup_manifest" ]] || { printf "pg_verifybackup: error: could not open file \"%s/backup_manifest\"\n" "${dir}" >&2; exit 1; }
cd "${dir}" && sha256sum --quiet --strict -c backup_manifest >&2 || { printf "pg_verifybackup: error: checksum mismatch\n" >&2; exit 1; }'
}

setup() {
  ut_setup
  ut_build
  make_ssh_stub
  make_rsync_stub
  make_verify_stub
  export REMOTE="${D}/remote"
  ut_secret "${SSH_KEY}" 'PRIVATE KEY'
  ut_secret "${KNOWN_HOSTS}" '[alpha.example]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA'
  # Both serve the modules artifacts and config; alpha's trees are postgres/ and config/ under its
  # backup disk, beta's pg/ and settings/: that is where they land locally.
  remote_server alpha.example
  remote_server beta.example
}

teardown() {
  ut_teardown
}

# remote_backup DIR SERVICE STAMP START_SEGMENT: a base backup as the server writes it (a data
# file, backup_label naming its start segment, backup_manifest listing the files' sha256).
remote_backup() {
  local dir="$1/basebackups/$2_basebackup_$3"
  mkdir -p "${dir}/base/1"
  printf '%s %s\n' "$2" "$3" >"${dir}/base/1/16384"
  printf 'START WAL LOCATION: 0/2000028 (file %s)\n' "$4" >"${dir}/backup_label"
  (cd "${dir}" && sha256sum base/1/16384 backup_label >backup_manifest)
}

# remote_server HOST: a mounted server side, with its sentinel, as its two modules.
remote_server() {
  local root="${REMOTE}/$1" svc=svc_a
  [[ "$1" == alpha.example ]] || svc=svc_z
  mkdir -p "${root}/artifacts/wal/${svc}" "${root}/config/etc/app"
  remote_backup "${root}/artifacts" "${svc}" 2024-01-01T02_00_00Z 000000010000000000000002
  printf 'wal\n' >"${root}/artifacts/wal/${svc}/000000010000000000000002"
  printf 'setting=%s\n' "$1" >"${root}/config/etc/app/app.conf"
  : >"${root}/artifacts/.pgb-sentinel"
}

# local_copy SERVER REL: a backup an earlier pull kept on the dev machine.
local_copy() {
  remote_backup "${LOCAL_BASE}/$1/$2" svc_a 2023-12-31T02_00_00Z 000000010000000000000001
  mkdir -p "${LOCAL_BASE}/$1/$2/wal/svc_a"
  printf 'older wal\n' >"${LOCAL_BASE}/$1/$2/wal/svc_a/000000010000000000000001"
}

# The store of alpha on the dev machine, and its mirror of alpha's artifacts module.
STORE_A() { printf '%s/alpha/postgres' "${LOCAL_BASE}"; }
MIRROR_A() { printf '%s/.pgb-incoming/alpha' "${LOCAL_BASE}"; }
BB_A=svc_a_basebackup_2024-01-01T02_00_00Z

@test "success: verified backups and WAL kept in localBase/<server>/<artifacts>, settings copied, older local backups kept" {
  local_copy alpha postgres
  run bash "${PULL_SCRIPT}"
  assert_success
  assert_output --partial "[alpha] verified and kept: ${BB_A}"
  assert_output --partial "[alpha] pull complete"
  assert_output --partial "[beta] pull complete"
  assert_output --partial "devbox: all 2 server(s) pulled"
  # The store is the server's tree (the sentinel too) plus what this machine kept before.
  run diff -r "${REMOTE}/alpha.example/artifacts/basebackups/${BB_A}" "$(STORE_A)/basebackups/${BB_A}"
  assert_success
  assert [ -f "$(STORE_A)/basebackups/svc_a_basebackup_2023-12-31T02_00_00Z/base/1/16384" ]
  assert [ -f "$(STORE_A)/wal/svc_a/000000010000000000000001" ]
  assert_equal "$(cat "$(STORE_A)/wal/svc_a/000000010000000000000002")" wal
  assert [ -f "$(STORE_A)/.pgb-sentinel" ]
  run diff -r "${REMOTE}/beta.example/artifacts" "${LOCAL_BASE}/beta/pg"
  assert_success
  run diff -r "${REMOTE}/alpha.example/config" "${LOCAL_BASE}/alpha/config"
  assert_success
  run diff -r "${REMOTE}/beta.example/config" "${LOCAL_BASE}/beta/settings"
  assert_success
  # Kept files are hard links of the mirror's (no second copy on disk).
  assert [ "$(STORE_A)/basebackups/${BB_A}/base/1/16384" -ef "$(MIRROR_A)/basebackups/${BB_A}/base/1/16384" ]
  assert [ "$(STORE_A)/wal/svc_a/000000010000000000000002" -ef "$(MIRROR_A)/wal/svc_a/000000010000000000000002" ]
  assert_equal "$(stat -c '%a' "${LOCAL_BASE}" "$(MIRROR_A)" "$(STORE_A)")" "$(printf '700\n700\n700')"
  # The sentinel was checked first; the transfer was counted (dry run) before it ran; --delete
  # only ever went to the mirror.
  run grep -nE -- "(--list-only|--delete)" "${STUB_LOG}/rsync.log"
  assert_regex "${lines[0]}" "--list-only .* jared@alpha\.example::artifacts/\.pgb-sentinel$"
  assert_regex "${lines[1]}" "^[0-9]+:--dry-run --stats .* --delete --no-links .* jared@alpha\.example::artifacts/ $(MIRROR_A)/$"
  assert_regex "${lines[2]}" "^[0-9]+:--recursive .* --delete --no-links --stats --partial-dir=\.rsync-partial .* jared@alpha\.example::artifacts/ $(MIRROR_A)/$"
  assert_equal "$(stub_count rsync "--delete .* ${LOCAL_BASE}/(alpha|beta)/")" 0
  # The backup was verified by the dev's own pg_verifybackup.
  assert_equal "$(stub_count pg_verifybackup "^-q $(MIRROR_A)/basebackups/${BB_A}$")" 1
}

@test "a second pull changes nothing kept; a server that rewrites a kept backup or WAL file cannot change our copy" {
  run bash "${PULL_SCRIPT}"
  assert_success
  local before
  before="$(ut_tree "$(STORE_A)")"
  run bash "${PULL_SCRIPT}"
  assert_success
  assert_equal "$(ut_tree "$(STORE_A)")" "${before}"
  # The server rewrites a file of a backup already kept, and a complete WAL segment.
  printf 'evil\n' >"${REMOTE}/alpha.example/artifacts/basebackups/${BB_A}/base/1/16384"
  printf 'evil wal\n' >"${REMOTE}/alpha.example/artifacts/wal/svc_a/000000010000000000000002"
  touch -d '2024-02-01' "${REMOTE}/alpha.example/artifacts/basebackups/${BB_A}/base/1/16384" \
    "${REMOTE}/alpha.example/artifacts/wal/svc_a/000000010000000000000002"
  run bash "${PULL_SCRIPT}"
  assert_success
  assert_output --partial "[alpha] the server changed 1 WAL file(s) of svc_a already pulled; the copies pulled first are kept"
  assert_equal "$(cat "$(MIRROR_A)/basebackups/${BB_A}/base/1/16384")" evil
  assert_equal "$(ut_tree "$(STORE_A)")" "${before}"
}

@test "a sentinel over an empty tree: the mirror follows the server, every kept backup and WAL file stays" {
  local_copy alpha postgres
  run bash "${PULL_SCRIPT}"
  assert_success
  local before
  before="$(ut_tree "$(STORE_A)")"
  rm -rf -- "${REMOTE}/alpha.example/artifacts"
  mkdir -p "${REMOTE}/alpha.example/artifacts"
  : >"${REMOTE}/alpha.example/artifacts/.pgb-sentinel"
  run bash "${PULL_SCRIPT}"
  assert_success
  assert [ ! -e "$(MIRROR_A)/basebackups" ]
  assert_equal "$(ut_tree "$(STORE_A)")" "${before}"
  assert [ -f "$(STORE_A)/basebackups/${BB_A}/base/1/16384" ]
}

@test "a backup that does not verify is never kept: the server's tampered copy stays in the mirror only, exit 1" {
  printf 'tampered\n' >>"${REMOTE}/alpha.example/artifacts/basebackups/${BB_A}/base/1/16384"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "base/1/16384: FAILED"
  assert_output --partial "[alpha] ${BB_A} does not verify (pg_verifybackup); not kept, the backups kept here are untouched"
  assert_output --partial "[alpha] pulled, but a base backup did not verify (see above)"
  assert_output --partial "[beta] pull complete"
  assert_output --partial "devbox: 1 of 2 server(s) failed"
  assert [ ! -e "$(STORE_A)/basebackups/${BB_A}" ]
  assert [ -f "$(MIRROR_A)/basebackups/${BB_A}/base/1/16384" ]
  # WAL still arrives; a backup without its manifest is not kept either.
  assert [ -f "$(STORE_A)/wal/svc_a/000000010000000000000002" ]
  rm -f -- "${REMOTE}/alpha.example/artifacts/basebackups/${BB_A}/backup_manifest"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial 'could not open file'
  assert [ ! -e "$(STORE_A)/basebackups/${BB_A}" ]
}

@test "pg_verifybackup missing on the dev machine: nothing kept, the fix named, exit 1" {
  rm -f -- "${PG_BIN_ROOT}/15/bin/pg_verifybackup"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "${PG_BIN_ROOT}/15/bin/pg_verifybackup missing (install postgresql-client-15); ${BB_A} not kept"
  assert [ ! -e "$(STORE_A)/basebackups/${BB_A}" ]
}

@test "names the server scripts never write are ignored with a warning: newline, leading dash, other service, future date" {
  local bbd="${REMOTE}/alpha.example/artifacts/basebackups"
  mkdir -p "${bbd}/svc_a_basebackup_2024-01-02T02_00_00Z"$'\n'"zz-outside" "${bbd}/-rf" "${bbd}/other_basebackup_2024-01-01T02_00_00Z"
  remote_backup "${REMOTE}/alpha.example/artifacts" svc_a 2099-01-01T02_00_00Z 000000010000000000000002
  mkdir -p "${REMOTE}/alpha.example/artifacts/wal/svc_a/-x"
  printf 'x\n' >"${REMOTE}/alpha.example/artifacts/wal/svc_a/000000010000000000000003"$'\n'"x"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "[alpha] ignoring basebackups/\$'svc_a_basebackup_2024-01-02T02_00_00Z\\nzz-outside': not a base backup of a configured service"
  assert_output --partial "[alpha] ignoring basebackups/-rf: not a base backup of a configured service"
  assert_output --partial "[alpha] ignoring basebackups/other_basebackup_2024-01-01T02_00_00Z: not a base backup"
  assert_output --partial "[alpha] svc_a_basebackup_2099-01-01T02_00_00Z: not a valid date, or dated in the future; not kept"
  assert_output --partial "[alpha] ignoring svc_a/-x: not a WAL file name the server writes"
  assert_output --partial "[alpha] ignoring svc_a/\$'000000010000000000000003\\nx': not a WAL file name"
  assert_equal "$(ls -A "$(STORE_A)/basebackups")" "${BB_A}"
  assert_equal "$(ls -A "$(STORE_A)/wal/svc_a")" 000000010000000000000002
}

@test "our own retention: the newest keepBackups and those kept in the last keepDays stay, WAL from the oldest kept on" {
  UT_DEV_KEEP=2:3 ut_build
  make_verify_stub
  local d
  for d in 2023-12-01 2023-12-02 2023-12-03; do
    remote_backup "$(STORE_A)" svc_a "${d}T02_00_00Z" "00000001000000000000000${d: -1}"
    touch -d '-10 days' "$(STORE_A)/basebackups/svc_a_basebackup_${d}T02_00_00Z"
  done
  remote_backup "$(STORE_A)" svc_a 2023-12-04T02_00_00Z 000000010000000000000004
  touch -d '-1 day' "$(STORE_A)/basebackups/svc_a_basebackup_2023-12-04T02_00_00Z"
  mkdir -p "$(STORE_A)/wal/svc_a"
  for d in 1 2 3 4; do printf 'w\n' >"$(STORE_A)/wal/svc_a/00000001000000000000000${d}"; done
  : >"$(STORE_A)/wal/svc_a/000000010000000000000004.partial"
  printf 'h\n' >"$(STORE_A)/wal/svc_a/00000002.history"
  rm -rf -- "${REMOTE}/alpha.example/artifacts/basebackups" "${REMOTE}/alpha.example/artifacts/wal"
  run bash "${PULL_SCRIPT}"
  assert_success
  # The newest two (12-03, 12-04) stay; 12-01 and 12-02 are past keepDays with two newer ones.
  assert_output --partial "[alpha] pruned svc_a_basebackup_2023-12-01T02_00_00Z (kept more than 3 day(s), 2 newer kept)"
  assert_equal "$(ls "$(STORE_A)/basebackups" | tr '\n' ' ')" "svc_a_basebackup_2023-12-03T02_00_00Z svc_a_basebackup_2023-12-04T02_00_00Z "
  assert_equal "$(ls "$(STORE_A)/wal/svc_a" | tr '\n' ' ')" "000000010000000000000003 000000010000000000000004 00000002.history "
  # A backup the server still serves that we pruned is not taken back.
  remote_backup "${REMOTE}/alpha.example/artifacts" svc_a 2023-12-01T02_00_00Z 000000010000000000000001
  run bash "${PULL_SCRIPT}"
  assert_success
  assert [ ! -e "$(STORE_A)/basebackups/svc_a_basebackup_2023-12-01T02_00_00Z" ]
}

@test "safe rsync options: no setuid bit, device node, FIFO, foreign owner or symlink out arrives" {
  local a="${REMOTE}/alpha.example/artifacts" c="${REMOTE}/alpha.example/config"
  cp /bin/true "${a}/basebackups/${BB_A}/suid"
  chmod 6755 "${a}/basebackups/${BB_A}/suid"
  chown 12345:12345 "${a}/basebackups/${BB_A}/base/1/16384"
  mknod "${a}/basebackups/${BB_A}/null" c 1 3
  mkfifo "${a}/basebackups/${BB_A}/fifo"
  ln -s /etc "${a}/basebackups/${BB_A}/etc-link"
  ln -s base "${a}/basebackups/${BB_A}/base-link"
  (cd "${a}/basebackups/${BB_A}" && sha256sum base/1/16384 backup_label suid >backup_manifest)
  ln -s /etc/shadow "${c}/etc/shadow-link"
  ln -s app/app.conf "${c}/etc/inside-link"
  mknod "${c}/etc/null" c 1 3
  cp /bin/true "${c}/etc/suid"
  chmod 4755 "${c}/etc/suid"
  run bash "${PULL_SCRIPT}"
  assert_success
  local kept
  kept="$(STORE_A)/basebackups/${BB_A}"
  assert_equal "$(stat -c '%a %u %g' "${kept}/suid" "${kept}/base/1/16384")" "$(printf '700 0 0\n600 0 0')"
  assert_equal "$(find "${LOCAL_BASE}" \( -type b -o -type c -o -type p -o -type s -o -perm /7000 \) -print)" ''
  assert_equal "$(find "${LOCAL_BASE}" ! -user 0 -print)" ''
  assert [ ! -e "${kept}/etc-link" ]
  assert [ ! -L "${kept}/base-link" ]
  assert [ ! -L "${LOCAL_BASE}/alpha/config/etc/shadow-link" ]
  assert [ -L "${LOCAL_BASE}/alpha/config/etc/inside-link" ]
  assert_equal "$(stat -c '%a' "${LOCAL_BASE}/alpha/config/etc/suid")" 700
}

@test "too big for the cap or for the free space: refused before anything is written, the local copy untouched" {
  UT_DEV_MAX_PULL=100 ut_build
  make_verify_stub
  local_copy alpha postgres
  local before
  before="$(ut_tree "${LOCAL_BASE}/alpha")"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --regexp "\[alpha\] the server would send [0-9]+ bytes, more than maxPullBytes \(100\); NOT pulling, local copy left untouched"
  assert_equal "$(ut_tree "${LOCAL_BASE}/alpha")" "${before}"
  assert_equal "$(find "$(MIRROR_A)" -type f | wc -l)" 0
  UT_DEV_RESERVE=1000000000000000 ut_build
  make_verify_stub
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --regexp "\[alpha\] the server would send [0-9]+ bytes; ${LOCAL_BASE} has [0-9]+ free and keeps 1000000000000000 in reserve; NOT pulling"
  assert_equal "$(ut_tree "${LOCAL_BASE}/alpha")" "${before}"
  assert_equal "$(find "$(MIRROR_A)" -type f | wc -l)" 0
}

@test "pinned host keys: every ssh gets our key, StrictHostKeyChecking=yes and our known_hosts; no --rsync-path" {
  run bash "${PULL_SCRIPT}"
  assert_success
  local calls
  calls="$(stub_count rsync)"
  assert [ "${calls}" -ge 6 ]
  # What rsync was told to run, on every call...
  assert_equal "$(stub_count rsync " -e ssh -p (2222|2223) -i ${SSH_KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${KNOWN_HOSTS} -o ConnectTimeout=[0-9]+ ")" "${calls}"
  # ... and what ssh got, word by word, with each server's own port and user.
  assert_equal "$(stub_count ssh)" "${calls}"
  assert_equal "$(stub_count ssh "^-p 2222 -i ${SSH_KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${KNOWN_HOSTS} -o ConnectTimeout=[0-9]+ jared@alpha\.example ")" "$((calls / 2))"
  assert_equal "$(stub_count ssh "^-p 2223 -i ${SSH_KEY} .* puller@beta\.example ")" "$((calls / 2))"
  assert_equal "$(stub_count rsync '--rsync-path')" 0
  assert_equal "$(stub_count ssh 'StrictHostKeyChecking=(no|accept-new)')" 0
  # Every remote path names one of the server's two rsync modules (daemon over ssh), never a path.
  assert_equal "$(stub_count rsync ' [a-z]+@[a-z.]+::(artifacts|config)/')" "${calls}"
  assert_equal "$(stub_count rsync ' [a-z]+@[a-z.]+:[^:]')" 0
}

@test "sentinel missing (server disk unmounted): no transfer at all, the local copy untouched, others pulled, exit 1" {
  rm -rf -- "${REMOTE}/alpha.example/artifacts" "${REMOTE}/alpha.example/config"
  mkdir -p "${REMOTE}/alpha.example/artifacts"
  local_copy alpha postgres
  local before
  before="$(ut_tree "${LOCAL_BASE}/alpha")"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "[alpha] no .pgb-sentinel on the server (backup disk unmounted, or server unreachable); NOT pulling, local copy left untouched"
  assert_output --partial "devbox: 1 of 2 server(s) failed"
  assert_equal "$(stub_count rsync '--delete.*alpha\.example')" 0
  assert_equal "$(ut_tree "${LOCAL_BASE}/alpha")" "${before}"
  assert [ -f "${LOCAL_BASE}/alpha/postgres/basebackups/svc_a_basebackup_2023-12-31T02_00_00Z/base/1/16384" ]
  # beta was still pulled.
  run diff -r "${REMOTE}/beta.example/artifacts" "${LOCAL_BASE}/beta/pg"
  assert_success
}

@test "sentinel missing while other files are there: still no --delete" {
  rm -f -- "${REMOTE}/alpha.example/artifacts/.pgb-sentinel"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_equal "$(stub_count rsync '--delete.*alpha\.example')" 0
  assert [ ! -e "${LOCAL_BASE}/alpha/postgres" ]
}

@test "one server unreachable: the others are still pulled, its local copy untouched, exit 1" {
  export SSH_DOWN_HOSTS=alpha.example
  local_copy alpha postgres
  local before
  before="$(ut_tree "${LOCAL_BASE}/alpha")"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "ssh: connect to host alpha.example port 2222: Connection refused"
  assert_output --partial "[alpha] no .pgb-sentinel on the server"
  assert_output --partial "[beta] pull complete"
  assert_output --partial "devbox: 1 of 2 server(s) failed"
  assert_equal "$(stub_count rsync '--delete.*alpha\.example')" 0
  assert_equal "$(ut_tree "${LOCAL_BASE}/alpha")" "${before}"
  run diff -r "${REMOTE}/beta.example/config" "${LOCAL_BASE}/beta/settings"
  assert_success
}

@test "every server unreachable: nothing pulled, nothing deleted, exit 1" {
  export SSH_DOWN_HOSTS="alpha.example beta.example"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "devbox: 2 of 2 server(s) failed"
  assert_equal "$(stub_count rsync '--delete')" 0
}

@test "a failing copy fails that server alone, its partial and temp files removed, exit 1" {
  export RSYNC_FAIL_HOSTS=alpha.example
  local_copy alpha postgres
  local before
  before="$(ut_tree "$(STORE_A)")"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "[alpha] pulling artifacts failed; the backups kept here are untouched"
  assert_equal "$(find "$(MIRROR_A)" -mindepth 1 -print)" ''
  assert_equal "$(ut_tree "$(STORE_A)")" "${before}"
  assert_output --partial "[beta] pull complete"
  run diff -r "${REMOTE}/beta.example/artifacts" "${LOCAL_BASE}/beta/pg"
  assert_success
}

@test "a server without system settings: artifacts pulled, settings skipped, exit 0" {
  rm -rf -- "${REMOTE}/beta.example/config"
  run bash "${PULL_SCRIPT}"
  assert_success
  assert_output --partial "[beta] no system settings on the server (config); skipped"
  assert [ ! -e "${LOCAL_BASE}/beta/settings" ]
  run diff -r "${REMOTE}/beta.example/artifacts" "${LOCAL_BASE}/beta/pg"
  assert_success
}

@test "lock held by another run: the WAL pull exits 75 at once; the nightly pull waits for it, then runs" {
  ut_hold_lock "${PULL_LOCK_FILE}"
  run bash "${PULL_SCRIPT}" --wal-only
  assert_failure 75
  assert_output --partial "another run holds ${PULL_LOCK_FILE}"
  assert_equal "$(stub_count rsync)" 0
  local log="${BATS_TEST_TMPDIR}/night.log" pid waited=0
  bash "${PULL_SCRIPT}" >"${log}" 2>&1 3>&- 8>&- &
  pid=$!
  until grep -q "waiting for the run holding ${PULL_LOCK_FILE} to finish" "${log}"; do
    (( waited++ < 600 )) || { kill "${pid}"; fail "the nightly pull did not wait: $(cat "${log}")"; }
    sleep 0.1
  done
  assert_equal "$(stub_count rsync)" 0
  ut_release_lock
  wait "${pid}"
  run cat "${log}"
  assert_output --partial "devbox: all 2 server(s) pulled"
}

@test "the WAL pull: only new WAL and the segment being written, nothing else of the tree, never --delete" {
  run bash "${PULL_SCRIPT}"
  assert_success
  local w="${REMOTE}/alpha.example/artifacts/wal/svc_a"
  # The server goes on: a new segment, the one being written, a new backup (not for the WAL pull).
  printf 'new wal\n' >"${w}/000000010000000000000003"
  printf 'partial 1\n' >"${w}/000000010000000000000004.partial"
  # Written last (the newest WAL), at .2 of a second.
  local second=$(( $(date +%s) + 2 ))
  touch -d "@${second}.2" "${w}/000000010000000000000004.partial"
  remote_backup "${REMOTE}/alpha.example/artifacts" svc_a 2024-01-02T02_00_00Z 000000010000000000000003
  printf 'changed\n' >"${REMOTE}/alpha.example/config/etc/app/app.conf"
  printf 'rewritten\n' >"${w}/000000010000000000000002"
  touch -d '2024-02-01' "${w}/000000010000000000000002"
  : >"${STUB_LOG}/rsync.log"
  run bash "${PULL_SCRIPT}" --wal-only
  assert_success
  assert_output --partial "[alpha] WAL pulled; newest here: svc_a/000000010000000000000004.partial, written "
  assert_output --partial "devbox: all 2 server(s) WAL pulled"
  assert_equal "$(cat "$(STORE_A)/wal/svc_a/000000010000000000000003")" "new wal"
  assert_equal "$(cat "$(STORE_A)/wal/svc_a/000000010000000000000004.partial")" "partial 1"
  assert [ ! -e "$(MIRROR_A)/basebackups/svc_a_basebackup_2024-01-02T02_00_00Z" ]
  assert_equal "$(cat "${LOCAL_BASE}/alpha/config/etc/app/app.conf")" "setting=alpha.example"
  run grep -c -- "--delete" "${STUB_LOG}/rsync.log"
  assert_output 0
  # The segment being written, written again within the second it was pulled at the same size,
  # arrives: the quick check compares mtimes to the nanosecond.
  printf 'partial 2\n' >"${w}/000000010000000000000004.partial"
  touch -d "@${second}.7" "${w}/000000010000000000000004.partial"
  run bash "${PULL_SCRIPT}" --wal-only
  assert_success
  assert_equal "$(cat "$(STORE_A)/wal/svc_a/000000010000000000000004.partial")" "partial 2"
  # A segment held already is left out by a filter rule: not even sent when the server changes it.
  assert_equal "$(cat "$(MIRROR_A)/wal/svc_a/000000010000000000000002")" wal
  # The segment is complete now: it replaces its .partial; the server deleting WAL changes nothing here.
  mv "${w}/000000010000000000000004.partial" "${w}/000000010000000000000004"
  printf 'complete\n' >"${w}/000000010000000000000004"
  rm -f "${w}/000000010000000000000002"
  run bash "${PULL_SCRIPT}" --wal-only
  assert_success
  assert_equal "$(cat "$(STORE_A)/wal/svc_a/000000010000000000000004")" complete
  assert [ ! -e "$(STORE_A)/wal/svc_a/000000010000000000000004.partial" ]
  assert [ -f "$(STORE_A)/wal/svc_a/000000010000000000000002" ]
  assert [ -f "$(MIRROR_A)/wal/svc_a/000000010000000000000002" ]
}

@test "the WAL pull keeps the distrust: names checked, specials dropped, the size counted first" {
  run bash "${PULL_SCRIPT}"
  assert_success
  local w="${REMOTE}/alpha.example/artifacts/wal/svc_a" nl=$'\n'
  printf 'x\n' >"${w}/000000010000000000000005${nl}x"
  install -m 4755 /bin/true "${w}/000000010000000000000006"
  mkfifo "${w}/000000010000000000000007"
  ln -s /etc/shadow "${w}/000000010000000000000008"
  run bash "${PULL_SCRIPT}" --wal-only
  assert_success
  assert_output --partial "ignoring svc_a/\$'000000010000000000000005\\nx': not a WAL file name the server writes"
  # No setuid bit (and no group or other bits): a private file of ours.
  assert_regex "$(stat -c '%a %U' "$(STORE_A)/wal/svc_a/000000010000000000000006")" '^[67]00 root$'
  assert [ ! -e "$(STORE_A)/wal/svc_a/000000010000000000000007" ]
  assert [ ! -e "$(STORE_A)/wal/svc_a/000000010000000000000008" ]
  truncate -s 300G "${w}/000000010000000000000009"
  run bash "${PULL_SCRIPT}" --wal-only
  assert_failure 1
  assert_output --partial "more than maxPullBytes"
  assert [ ! -e "$(MIRROR_A)/wal/svc_a/000000010000000000000009" ]
  run bash "${PULL_SCRIPT}" --bogus
  assert_failure 2
  assert_output --partial "usage: pull-server-backups.sh [--wal-only]"
}

@test "pull key missing or known_hosts empty: refused before any connection" {
  rm -f -- "${SSH_KEY}"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "pull key missing: ${SSH_KEY}"
  assert_equal "$(stub_count rsync)" 0

  ut_secret "${SSH_KEY}" 'PRIVATE KEY'
  : >"${KNOWN_HOSTS}"
  run bash "${PULL_SCRIPT}"
  assert_failure 1
  assert_output --partial "known_hosts missing or empty: ${KNOWN_HOSTS}"
  assert_equal "$(stub_count rsync)" 0
}

# next_night_backup: the server's svc_a backup of the night after BB_A, as rawReuse link writes it:
# the cold file is BB_A's (one inode, its mtime), base/1/16384 and backup_label are new.
BB_A2=svc_a_basebackup_2024-01-02T02_00_00Z
next_night_backup() {
  local art="${REMOTE}/alpha.example/artifacts/basebackups"
  mkdir -p "${art}/${BB_A2}/base/1"
  ln -- "${art}/${BB_A}/base/1/20000" "${art}/${BB_A2}/base/1/20000"
  printf 'svc_a night 2, changed\n' >"${art}/${BB_A2}/base/1/16384"
  printf 'START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\n' >"${art}/${BB_A2}/backup_label"
  (cd "${art}/${BB_A2}" && sha256sum base/1/16384 base/1/20000 backup_label >backup_manifest)
  # Written the night after: a day later than BB_A's files. A file of the same size and second
  # passes rsync's quick check against its seed: the manifest, as long as BB_A's (cold_file), made
  # in the same second under load, kept BB_A's in the mirror. A real night is a day apart.
  touch -d "@$(( $(stat -c %Y "${art}/${BB_A}/backup_manifest") + 86400 ))" \
    "${art}/${BB_A2}/base/1/16384" "${art}/${BB_A2}/backup_label" "${art}/${BB_A2}/backup_manifest"
}
# cold_file: a file of BB_A that stays unchanged the night after.
cold_file() {
  local dir="${REMOTE}/alpha.example/artifacts/basebackups/${BB_A}"
  head -c 65536 /dev/urandom >"${dir}/base/1/20000"
  (cd "${dir}" && sha256sum base/1/16384 base/1/20000 backup_label >backup_manifest)
}

@test "pullBasis previous (default): a new backup starts in the mirror as links of the service's previous one; only what changed arrives, the older copies untouched" {
  cold_file
  run bash "${PULL_SCRIPT}"
  assert_success
  local before
  before="$(ut_tree "$(STORE_A)/basebackups/${BB_A}")"
  next_night_backup
  run bash "${PULL_SCRIPT}"
  assert_success
  assert_output --partial "[alpha] verified and kept: ${BB_A2}"
  local pulled="${output}" received
  # The basis was asked for by one listing of the server's basebackups/ (after the sentinel).
  assert_equal "$(stub_count rsync "^--list-only --no-human-readable .* jared@alpha\.example::artifacts/basebackups/$")" 1
  # The kept copy is the server's backup; its unchanged file is the previous one's (one inode),
  # the changed file a new one; the previous backup is as it was.
  run diff -r "${REMOTE}/alpha.example/artifacts/basebackups/${BB_A2}" "$(STORE_A)/basebackups/${BB_A2}"
  assert_success
  assert [ "$(STORE_A)/basebackups/${BB_A2}/base/1/20000" -ef "$(STORE_A)/basebackups/${BB_A}/base/1/20000" ]
  assert [ ! "$(STORE_A)/basebackups/${BB_A2}/base/1/16384" -ef "$(STORE_A)/basebackups/${BB_A}/base/1/16384" ]
  assert_equal "$(ut_tree "$(STORE_A)/basebackups/${BB_A}")" "${before}"
  # Only the changed files were counted for the cap (the cold file's 64 KiB were not).
  received="$(sed -n 's/.*\[alpha\] receiving \([0-9]*\) bytes from jared@alpha\.example::artifacts\/$/\1/p' <<<"${pulled}")"
  assert_regex "${received}" '^[0-9]+$'
  (( received < 65536 ))
}

@test "pullBasis previous: a server listing backups of unknown services or odd names seeds nothing for them; a seed the server does not have is deleted from the mirror" {
  run bash "${PULL_SCRIPT}"
  assert_success
  local art="${REMOTE}/alpha.example/artifacts/basebackups"
  mkdir -p "${art}/svc_x_basebackup_2024-01-02T02_00_00Z" "${art}/${BB_A}.odd"
  run bash "${PULL_SCRIPT}"
  assert_success
  assert [ ! -e "$(MIRROR_A)/basebackups/svc_x_basebackup_2024-01-02T02_00_00Z/base" ]
  assert [ ! -e "$(MIRROR_A)/basebackups/${BB_A}.odd/base" ]
  assert_output --partial "ignoring basebackups/svc_x_basebackup_2024-01-02T02_00_00Z"
}

@test "pullBasis none: a new backup arrives whole, sharing nothing with the previous one" {
  UT_DEV_PULL_BASIS=none ut_build
  cold_file
  run bash "${PULL_SCRIPT}"
  assert_success
  next_night_backup
  run bash "${PULL_SCRIPT}"
  assert_success
  assert_output --partial "[alpha] verified and kept: ${BB_A2}"
  assert_equal "$(stub_count rsync "^--list-only --no-human-readable")" 0
  assert [ ! "$(STORE_A)/basebackups/${BB_A2}/base/1/20000" -ef "$(STORE_A)/basebackups/${BB_A}/base/1/20000" ]
  run diff -r "${REMOTE}/alpha.example/artifacts/basebackups/${BB_A2}" "$(STORE_A)/basebackups/${BB_A2}"
  assert_success
}

@test "pullCompress zstd (default): every transfer of the nightly and the --wal-only pull asks for zstd (the dry runs count whole files); none asks for none" {
  run bash "${PULL_SCRIPT}"
  assert_success
  local transfers
  transfers="$(stub_count rsync '--partial-dir=')"
  (( transfers > 0 ))
  assert_equal "$(stub_count rsync '--compress --compress-choice=zstd .*--partial-dir=')" "${transfers}"
  assert_equal "$(stub_count rsync '--dry-run.*--compress')" 0
  run diff -r "${REMOTE}/alpha.example/artifacts/basebackups/${BB_A}" "$(STORE_A)/basebackups/${BB_A}"
  assert_success
  rm -f -- "${STUB_LOG}/rsync.log"
  run bash "${PULL_SCRIPT}" --wal-only
  assert_success
  transfers="$(stub_count rsync '--partial-dir=')"
  (( transfers > 0 ))
  assert_equal "$(stub_count rsync '--compress --compress-choice=zstd .*--partial-dir=')" "${transfers}"

  UT_DEV_PULL_COMPRESS=none ut_build
  rm -f -- "${STUB_LOG}/rsync.log"
  run bash "${PULL_SCRIPT}"
  assert_success
  (( $(stub_count rsync '--partial-dir=') > 0 ))
  assert_equal "$(stub_count rsync '--compress')" 0
}
