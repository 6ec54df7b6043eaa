#!/usr/bin/env bats
# A compromised server, for real (issue 17): a real sshd on 127.0.0.1 whose key runs the attacker's
# own rsync daemon (as root, no chroot, links sent as they are), serving hostile trees to the
# GENERATED dev scripts, run by hand as root as an operator would (outside their unit's sandbox):
# setuid files, device nodes, FIFOs, sockets, foreign owners, a sparse 50 GB file, symlink chains,
# names with newlines and leading dashes, a valid sentinel over an empty tree, tampered backups.
# The dev machine's local base is a small tmpfs; a real PostgreSQL 15 base backup, pulled and
# verified first, must survive all of it and restore. Every assertion is on the dev's files, its
# free space and the surviving copies.

PORT=55841
PG_PORT=55842

setup_file() {
  load helpers/load
  pgb_require_root
  local cmd
  for cmd in sshd ssh ssh-keygen rsync mknod python3; do
    command -v "${cmd}" >/dev/null || { printf 'missing command: %s\n' "${cmd}" >&2; return 1; }
  done
  pgb_scratch_init
  local t="${PGB_T}"
  export SRV="evil"
  export DEV="devbox"
  export SERVED="${t}/server"
  export GEN="${t}/gen"
  export KEY="${t}/dev/key"
  export KNOWN_HOSTS="${t}/dev/known_hosts"
  export DEV_BASE="${t}/dev/upload"
  export STORE="${DEV_BASE}/${SRV}/postgres"
  export MIRROR="${DEV_BASE}/.pgb-incoming/${SRV}"
  export DEV_LOCAL="${t}/dev/private"
  export GOOD="${t}/good"
  export PULL="${GEN}/${DEV}/root/usr/local/sbin/pull-server-backups.sh"
  export DEV_RESTORE="${GEN}/${DEV}/root/usr/local/sbin/pgb-restore.sh"

  mkdir -p "${t}/dev" "${t}/sshd" "${SERVED}" "${DEV_LOCAL}/wal/svc"
  # What the dev machine holds that no server may ever get at: a private dir shaped like WAL.
  printf 'dev-private\n' >"${DEV_LOCAL}/wal/svc/000000010000000000000009"
  pgb_mount_tmpfs "${DEV_BASE}" 256m
  ssh-keygen -q -t ed25519 -N '' -C "${DEV}" -f "${KEY}"
  # The attacker's daemon: root, no chroot, links and specials served as they are.
  cat >"${t}/sshd/rsyncd.conf" <<EOF
use chroot = no
munge symlinks = no
uid = root
gid = root
numeric ids = yes
read only = yes
[artifacts]
path = ${SERVED}/postgres
[config]
path = ${SERVED}/config
EOF
  printf 'restrict,command="/usr/bin/rsync --server --daemon --config=%s ." %s\n' \
    "${t}/sshd/rsyncd.conf" "$(cat "${KEY}.pub")" >"${t}/sshd/authorized_keys"
  pgb_sshd_start "${t}/sshd" "${PORT}" root "${t}/sshd/authorized_keys" "${KNOWN_HOSTS}"

  write_config "${t}/pgb.config.yaml"
  pgb_generate "${t}/pgb.config.yaml" "${GEN}" >"${t}/logs/build.log" 2>&1

  # One real base backup of PostgreSQL 15, as pg_backup_all.sh promotes it, and its WAL.
  pg_cluster_create "${t}/pg/svc" "${PG_PORT}"
  pg_cluster_start "${t}/pg/svc"
  pg_psql "${PG_PORT}" -c "CREATE TABLE precious AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g" >/dev/null
  pg_psql "${PG_PORT}" -c "SELECT md5(string_agg(v, '' ORDER BY id)) FROM precious" >"${t}/precious.digest"
  export STAMP
  STAMP="$(date -u -d '-1 hour' +%Y-%m-%dT%H_%M_%SZ)"
  export BB="svc_basebackup_${STAMP}"
  mkdir -p "${GOOD}/postgres/basebackups" "${GOOD}/postgres/wal/svc" "${GOOD}/config/etc"
  chown postgres: "${GOOD}/postgres/basebackups"
  pg_as_postgres "${PGB_PG_BIN}/pg_basebackup" -h "$(pg_sock_dir)" -p "${PG_PORT}" -U postgres \
    -D "${GOOD}/postgres/basebackups/${BB}" -Fp -X stream -c fast --no-sync
  pg_cluster_stop "${t}/pg/svc"
  chown -R root:root "${GOOD}"
  cp -p -- "${GOOD}/postgres/basebackups/${BB}/pg_wal/"0000000100000000000000* "${GOOD}/postgres/wal/svc/"
  printf 'setting = 1\n' >"${GOOD}/config/etc/app.conf"
  : >"${GOOD}/postgres/.pgb-sentinel"
  chmod -R go-rwx "${GOOD}"
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

write_config() {
  cat >"$1" <<EOF
version: 1
servers:
  - name: ${SRV}
    host: 127.0.0.1
    ssh: { port: ${PORT}, user: root }
    paths:
      backupMount: /mnt/evil
      artifacts: /mnt/evil/postgres
      configArtifacts: /mnt/evil/config
    repos: { primary: /mnt/evil/borg, external: null }
    borg: { passphraseFile: ${PGB_T}/secrets/pg-borg.env }
    replication: { passwordFile: ${PGB_T}/secrets/repl_password }
    services:
      - { name: svc, port: ${PG_PORT}, pgVersion: 15 }
devs:
  - name: ${DEV}
    pullFrom: [${SRV}]
    address: 127.0.0.1
    localBase: ${DEV_BASE}
    sshKey: ${KEY}
    knownHosts: ${KNOWN_HOSTS}
    lockFile: ${PGB_T}/dev/pull.lock
    maxPullBytes: 1073741824
    reserveBytes: 67108864
EOF
}

# serve [hostile...]: the served trees become a copy of the good ones, then each named part is added.
serve() {
  rm -rf -- "${SERVED:?}/postgres" "${SERVED:?}/config"
  cp -a -- "${GOOD}/postgres" "${GOOD}/config" "${SERVED}/"
  local part
  for part in "$@"; do
    "serve_${part}"
  done
}

# Files as -a would recreate them when run as root: setuid root, devices, FIFO, socket, other owners,
# some of them under names the pull keeps (a WAL segment's).
serve_specials() {
  local w="${SERVED}/postgres/wal/svc" e="${SERVED}/config/etc"
  install -m 4755 -o root -g root /bin/true "${w}/000000010000000000000070"
  install -m 6755 -o root -g root /bin/true "${e}/rootshell"
  mknod "${w}/000000010000000000000071" b 7 0
  mknod "${e}/mem" c 1 1
  mkfifo "${w}/000000010000000000000072"
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "${e}/agent.sock"
  printf 'owned by someone else\n' >"${w}/000000010000000000000073"
  chown 4242:4242 "${w}/000000010000000000000073"
  install -d -m 1777 -o 4242 -g 4242 "${e}/sticky"
}

# Symlink chains to the dev machine's private dir (server and dev share this host), and names that
# break a line-by-line reader or look like options.
serve_links_and_names() {
  local p="${SERVED}/postgres" nl=$'\n'
  mv -- "${p}/wal" "${p}/realwal"
  ln -s hop1 "${p}/wal"
  ln -s hop2 "${p}/hop1"
  ln -s "${DEV_LOCAL}/wal" "${p}/hop2"
  ln -s "${DEV_LOCAL}" "${p}/basebackups/zz-outside"
  cp -a -- "${p}/basebackups/${BB}" "${p}/basebackups/svc_basebackup_2030-01-01T00_00_00Z${nl}zz-outside"
  cp -a -- "${p}/basebackups/${BB}" "${p}/basebackups/--delete"
  cp -a -- "${p}/basebackups/${BB}" "${p}/basebackups/-svc_basebackup_${STAMP}"
  ln -s "${DEV_LOCAL}/wal/svc" "${SERVED}/config/etc/private"
}

serve_sparse_50g() {
  truncate -s 50G "${SERVED}/postgres/wal/svc/000000010000000000000080"
}

serve_sparse_200m() {
  truncate -s 200M "${SERVED}/postgres/wal/svc/000000010000000000000080"
}

serve_sparse_100m() {
  truncate -s 100M "${SERVED}/postgres/wal/svc/000000010000000000000080"
}

serve_empty() {
  rm -rf -- "${SERVED:?}/postgres" "${SERVED:?}/config"
  mkdir -p "${SERVED}/postgres" "${SERVED}/config"
  : >"${SERVED}/postgres/.pgb-sentinel"
}

# A new backup with one data file changed (fails pg_verifybackup), and the already-kept backup's
# files rewritten on the server.
serve_tampered() {
  local b="${SERVED}/postgres/basebackups" f
  cp -a -- "${b}/${BB}" "${b}/svc_basebackup_$(date -u +%Y-%m-%dT%H_%M_%SZ)"
  while IFS= read -r -d '' f; do
    printf 'tampered' | dd of="${f}" bs=1 seek=100 conv=notrunc status=none
    touch "${f}"
  done < <(find "${b}" -path '*/base/*' -type f -size +8k -print0)
}

pull() {
  pgb_run_logged "pull-$1" bash "${PULL}"
}

# The dev's kept copy, by content: names, sizes and sha256 of every file of the store.
store_sums() {
  (cd "${STORE}" && find . -type f -printf '%p %s\n' | sort && find . -type f -exec sha256sum {} + | sort)
}

# Nothing on the dev's local base that the pull must never make.
assert_nothing_special() {
  run find "${DEV_BASE}" -perm /7000 -print
  assert_output ''
  run find "${DEV_BASE}" ! -type f ! -type d -print
  assert_output ''
  run find "${DEV_BASE}" \( ! -uid 0 -o ! -gid 0 \) -print
  assert_output ''
  run find "${DEV_BASE}" -type f -exec grep -l dev-private {} +
  assert_output ''
}

assert_no_partials() {
  run find "${DEV_BASE}" \( -name .rsync-partial -o -name '.*.??????' \) -print
  assert_output ''
}

@test "a good server: the real base backup is pulled, verified by pg_verifybackup and kept" {
  serve
  pull good
  assert_equal "${status}" 0
  assert_output --partial "[${SRV}] verified and kept: ${BB}"
  assert [ -f "${STORE}/basebackups/${BB}/backup_manifest" ]
  assert [ -n "$(ls -A "${STORE}/wal/svc")" ]
  assert_log_lines_stamped "${PGB_LAST_LOG}"
  store_sums >"${PGB_T}/store.good"
}

@test "setuid files, devices, FIFOs, sockets and foreign owners never arrive, run by hand as root" {
  serve specials
  # The tree is hostile: rsync -a as root (the old pull) recreates all of it.
  mkdir -p "${PGB_T}/control"
  rsync -a -e "ssh -p ${PORT} -i ${KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${KNOWN_HOSTS}" \
    "root@127.0.0.1::artifacts/" "${PGB_T}/control/"
  assert [ -u "${PGB_T}/control/wal/svc/000000010000000000000070" ]
  assert [ -b "${PGB_T}/control/wal/svc/000000010000000000000071" ]
  assert [ -p "${PGB_T}/control/wal/svc/000000010000000000000072" ]
  assert_equal "$(stat -c %u "${PGB_T}/control/wal/svc/000000010000000000000073")" 4242
  rm -rf -- "${PGB_T}/control"

  pull specials
  assert_equal "${status}" 0
  assert_output --partial '[WARN]   skipping non-regular file "wal/svc/000000010000000000000071"'
  assert_log_lines_stamped "${PGB_LAST_LOG}"
  assert_nothing_special
  # The setuid segment-named file arrives as a plain private file of root's: the umask's 700, or
  # 600 when it was built on a similar file of the mirror (pullBasis previous: --fuzzy).
  assert_regex "$(stat -c '%a %U' "${STORE}/wal/svc/000000010000000000000070")" '^[67]00 root$'
  assert [ ! -e "${STORE}/wal/svc/000000010000000000000071" ]
  assert [ ! -e "${STORE}/wal/svc/000000010000000000000072" ]
  assert [ ! -e "${DEV_BASE}/${SRV}/config/etc/mem" ]
  assert [ ! -e "${DEV_BASE}/${SRV}/config/etc/agent.sock" ]
  assert_equal "$(stat -c '%a' "${DEV_BASE}/${SRV}/config/etc/sticky")" 700
  assert_equal "$(stat -c '%a' "${DEV_BASE}/${SRV}/config/etc/rootshell")" 700
  run diff <(store_sums | grep basebackups) <(grep basebackups "${PGB_T}/store.good")
  assert_success
}

@test "symlink chains and names with newlines or dashes: nothing of the dev machine is pulled, listed or restored" {
  serve links_and_names
  pull links
  assert_equal "${status}" 0
  assert_output --partial "ignoring basebackups/\$'svc_basebackup_2030-01-01T00_00_00Z\\nzz-outside': not a base backup of a configured service"
  assert_output --partial "ignoring basebackups/--delete: not a base backup"
  assert_output --partial "ignoring basebackups/-svc_basebackup_${STAMP}: not a base backup"
  assert_nothing_special
  run find "${DEV_BASE}" -name '*zz-outside*' -path "${STORE}/*" -print
  assert_output ''
  assert_equal "$(ls "${STORE}/basebackups")" "${BB}"

  # Where a tree already holds such entries (a copy made by hand, an older pull): the dev's
  # restore follows no link out of it and takes no name it would not write.
  local nl=$'\n'
  cp -a -- "${STORE}/basebackups/${BB}" "${STORE}/basebackups/svc_basebackup_2030-01-01T00_00_00Z${nl}zz-outside"
  ln -s "${DEV_LOCAL}" "${STORE}/basebackups/zz-outside"
  mv -- "${STORE}/wal" "${PGB_T}/store-wal"
  ln -s "${DEV_LOCAL}/wal" "${STORE}/wal"
  run bash "${DEV_RESTORE}" list --service svc
  assert_success
  assert_output --partial "ignoring ${STORE}/wal: a symlink"
  assert_output --partial "ignoring ${STORE}/basebackups/\$'svc_basebackup_2030-01-01T00_00_00Z\\nzz-outside'"
  assert_equal "$(grep -c 'consistent at' <<<"${output}")" 1
  run bash "${DEV_RESTORE}" restore --service svc --dest "${PGB_T}/restore-links"
  assert_success
  assert_output --partial "restored ${BB} into ${PGB_T}/restore-links"
  run grep -rl dev-private "${PGB_T}/restore-links" "${PGB_T}/restore-links-wal"
  assert_output ''
  assert [ -z "$(ls -A "${PGB_T}/restore-links-wal")" ]
  rm -rf -- "${PGB_T}/restore-links" "${PGB_T}/restore-links-wal" "${STORE}/wal" \
    "${STORE}/basebackups/zz-outside" "${STORE}/basebackups/svc_basebackup_2030-01-01T00_00_00Z${nl}zz-outside"
  mv -- "${PGB_T}/store-wal" "${STORE}/wal"
}

@test "a sparse 50 GB file is refused before anything is written; free space and the kept copy intact" {
  local before after
  before="$(pgb_fs_avail "${DEV_BASE}")"
  serve sparse_50g
  pull sparse50
  assert_equal "${status}" 1
  assert_output --partial "[${SRV}] the server would send"
  assert_output --partial "more than maxPullBytes (1073741824); NOT pulling, local copy left untouched"
  after="$(pgb_fs_avail "${DEV_BASE}")"
  # Within 1 MiB: nothing of it was written.
  (( before - after < 1048576 )) || fail "free space fell from ${before} to ${after}"
  assert_no_partials
  assert [ ! -e "${MIRROR}/wal/svc/000000010000000000000080" ]
  run diff <(store_sums | grep basebackups) <(grep basebackups "${PGB_T}/store.good")
  assert_success

  # Under the cap but over the free space above the reserve: refused too, saying so.
  serve sparse_200m
  pull sparse200
  assert_equal "${status}" 1
  assert_output --partial "has "
  assert_output --partial "free and keeps 67108864 in reserve; NOT pulling, local copy left untouched"
  assert_no_partials
  after="$(pgb_fs_avail "${DEV_BASE}")"
  (( before - after < 1048576 )) || fail "free space fell from ${before} to ${after}"
}

@test "a sparse file that fits arrives with its holes: it takes no room" {
  serve sparse_100m
  pull sparse100
  assert_equal "${status}" 0
  local f="${MIRROR}/wal/svc/000000010000000000000080"
  assert_equal "$(stat -c %s "${f}")" 104857600
  (( $(stat -c %b "${f}") * $(stat -c %B "${f}") < 1048576 )) || fail "holes not kept: $(du -h "${f}")"
  assert_no_partials
}

@test "a valid sentinel over an empty tree: the mirror empties, the kept backups and WAL stay" {
  serve empty
  pull empty
  assert_equal "${status}" 0
  assert [ -z "$(find "${MIRROR}" -mindepth 1 ! -name .pgb-sentinel -print)" ]
  run diff <(store_sums | grep basebackups) <(grep basebackups "${PGB_T}/store.good")
  assert_success
  assert [ -n "$(find "${STORE}/wal/svc" -name '0000000100000000000000*' -print)" ]
}

@test "a tampered new backup is not kept; the server rewriting a kept one leaves the dev's copy as verified" {
  serve tampered
  pull tampered
  assert_equal "${status}" 1
  assert_output --partial "does not verify (pg_verifybackup); not kept, the backups kept here are untouched"
  assert_equal "$(ls "${STORE}/basebackups")" "${BB}"
  # The mirror has the server's rewritten files; the kept copy is byte for byte what was verified.
  run diff -rq "${MIRROR}/basebackups/${BB}" "${STORE}/basebackups/${BB}"
  assert_failure
  run diff <(store_sums | grep basebackups) <(grep basebackups "${PGB_T}/store.good")
  assert_success
  run "${PGB_PG_BIN}/pg_verifybackup" -q "${STORE}/basebackups/${BB}"
  assert_success
}

@test "after all of it the dev's copy restores alone and verifies: PostgreSQL answers with the data" {
  local dest="${PGB_T}/restore-final"
  run bash "${DEV_RESTORE}" restore --service svc --dest "${dest}" --verify
  assert_success
  assert_output --partial "verified: ${dest} recovered"
  run pg_query_datadir "${dest}" "${PG_PORT}" "SELECT count(*) || ' ' || md5(string_agg(v, '' ORDER BY id)) FROM precious"
  assert_success
  assert_output "5000 $(cat "${PGB_T}/precious.digest")"
  assert_nothing_special
}
