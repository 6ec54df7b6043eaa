#!/usr/bin/env bats
# The hardened pull path, for real: an sshd on 127.0.0.1 started by this suite, a test pull user
# with /bin/sh, the GENERATED sudoers drop-in (checked with visudo -cf, installed under its own
# unique name), the GENERATED rsync daemon config (at its own unique path below /etc/pgb-gen) and
# the GENERATED authorized_keys line. The sshd config itself forbids nothing (forwarding, PTYs and
# commands are allowed there), so every refusal below comes from the generated key options, the
# forced `sudo -n rsync --server --daemon --config=...` command, the daemon config and the sudoers rule.
# The backup disk also holds the Borg repository (a sibling of the two served trees): the key
# reads the two trees and nothing else.
# The pull succeeds and is byte-identical; every attack fails and leaves no trace.

PORT=55441

setup_file() {
  load helpers/common
  pgb_require_root
  local cmd
  for cmd in sshd ssh ssh-keygen rsync sudo visudo runuser useradd userdel diff; do
    command -v "${cmd}" >/dev/null || { printf 'missing command: %s\n' "${cmd}" >&2; return 1; }
  done
  pgb_scratch_init
  local t="${PGB_T}"
  export SRV="pgbsec-$$"
  export DEV="pgbsec-dev-$$"
  export PULL_USER="pgbpull$$"
  export SUDOERS_LIVE="/etc/sudoers.d/pgb-pull-${SRV}"
  export RSYNCD_LIVE="/etc/pgb-gen/rsyncd-${SRV}.conf"
  export RSYNCD_LOCK="/run/lock/pgb-rsyncd-${SRV}.lock"
  export TREE="${t}/backup"
  export GEN="${t}/gen"
  export KEY="${t}/dev/key"
  export KNOWN_HOSTS="${t}/dev/known_hosts"
  export PULLED="${t}/dev/pulled"
  export LOOT="${t}/loot"
  export OUTSIDE="${t}/outside"
  export BORG_REPO_DIR="${t}/backup/borg"
  export MARKER="${t}/pwned"
  export EVIL_NAME="pgb-evil-$$"

  pgb_sshd_privsep_dir

  # The pull user, as install.sh makes it: system user, /bin/sh, no password but not locked.
  useradd --system --shell /bin/sh --home-dir "${t}/home" --create-home -- "${PULL_USER}"
  printf '%s\n' "${PULL_USER}" >"${t}/created-user"
  usermod -p '*' -- "${PULL_USER}"

  mkdir -p "${t}/dev" "${t}/sshd" "${LOOT}" "${OUTSIDE}"
  ssh-keygen -q -t ed25519 -N '' -C "${DEV}" -f "${KEY}"
  ssh-keygen -q -t ed25519 -N '' -C host -f "${t}/sshd/host_key"
  printf '[127.0.0.1]:%s %s\n' "${PORT}" "$(cut -d' ' -f1,2 "${t}/sshd/host_key.pub")" >"${KNOWN_HOSTS}"
  chmod 600 "${KNOWN_HOSTS}"

  populate_tree
  write_config "${t}/pgb.config.yaml"
  pgb_generate "${t}/pgb.config.yaml" "${GEN}" >/dev/null

  # The generated sudoers drop-in: visudo -cf on the file first, then live, then visudo -c.
  local sudoers="${GEN}/${SRV}/root${SUDOERS_LIVE}"
  visudo -cqf "${sudoers}"
  install -m 0440 -o root -g root "${sudoers}" "${SUDOERS_LIVE}"
  visudo -cq

  # The generated rsync daemon config, root-owned 0644 as MANIFEST says.
  grep -qxF "0644 root root ${RSYNCD_LIVE} $(sha256sum <"${GEN}/${SRV}/root${RSYNCD_LIVE}" | cut -d' ' -f1)" "${GEN}/${SRV}/MANIFEST"
  if [[ ! -d /etc/pgb-gen ]]; then
    install -d -m 0755 -o root -g root /etc/pgb-gen
    : >"${t}/created-etc-pgb-gen"
  fi
  install -m 0644 -o root -g root "${GEN}/${SRV}/root${RSYNCD_LIVE}" "${RSYNCD_LIVE}"
  # The daemon's pre-transfer check of hard links, root-owned as install.sh puts it.
  install -d -m 0755 -o root -g root "${t}/sbin"
  install -m 0750 -o root -g root "${GEN}/${SRV}/root${t}/sbin/pgb_pull_links.sh" "${t}/sbin/pgb_pull_links.sh"

  # The generated authorized_keys line, root-owned as the snippet advises.
  install -d -m 0755 -o root -g root "${t}/home/.ssh"
  grep -v -e '^#' -e '^$' "${GEN}/${SRV}/snippets/authorized_keys" >"${t}/home/.ssh/authorized_keys"
  chmod 0644 "${t}/home/.ssh/authorized_keys"

  cat >"${t}/sshd/sshd_config" <<EOF
Port ${PORT}
ListenAddress 127.0.0.1
HostKey ${t}/sshd/host_key
PidFile ${t}/sshd/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
PermitRootLogin no
AllowUsers ${PULL_USER}
LogLevel VERBOSE
EOF
  /usr/sbin/sshd -t -f "${t}/sshd/sshd_config"
  /usr/sbin/sshd -D -f "${t}/sshd/sshd_config" -E "${t}/logs/sshd.log" &
  pgb_started_add pid "$!"
  pgb_wait_for "the test sshd to listen on 127.0.0.1:${PORT}" 120 sshd_state pgb_port_open "${PORT}"

  tree_state >"${t}/tree.before"
}

teardown_file() {
  load helpers/common
  load helpers/sshd
  [[ -n "${PGB_T:-}" ]] || return 0
  rm -f -- "${SUDOERS_LIVE}" "${RSYNCD_LIVE}" "${RSYNCD_LOCK}"
  if [[ -f "${PGB_T}/created-etc-pgb-gen" ]]; then
    rmdir /etc/pgb-gen 2>/dev/null || true
  fi
  # sshd first (its sessions run as the pull user), then the user, then the scratch root.
  pgb_sshd_stop
  if [[ -f "${PGB_T}/created-user" ]]; then
    remove_user "$(cat "${PGB_T}/created-user")"
  fi
  pgb_teardown_all
}

setup() {
  load helpers/common
  pgb_load_bats_libs
  # The attacker holds the dev machine's key and uses the same ssh options as the dev script.
  SSH_OPTS=(-p "${PORT}" -i "${KEY}" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes
    -o UserKnownHostsFile="${KNOWN_HOSTS}" -o ConnectTimeout=10)
  rm -rf -- "${LOOT:?}"
  mkdir -p "${LOOT}"
}

# A failed test shows what the test sshd logged meanwhile (refused keys, dropped connections).
teardown() {
  [[ -n "${BATS_TEST_COMPLETED:-}" ]] || pgb_tail_file "${PGB_T}/logs/sshd.log" 30 >&2
}

# Diagnostics of a wait on the test sshd, and on the -L forward test.
sshd_state() {
  pgb_tail_file "${PGB_T}/logs/sshd.log"
}

forward_state() {
  sshd_state
  pgb_tail_file "${PGB_T}/logs/forward-L.err"
}

# Removes the test user; sessions still open belong to this suite's own sshd: they end by pid first.
remove_user() {
  local user="$1" pid
  pgb_wait_for "the sessions of ${user} to end" 30 - bash -c '! ps -u "$1" -o pid= >/dev/null' _ "${user}" || {
    for pid in $(ps -u "${user}" -o pid= 2>/dev/null); do
      kill -KILL "${pid}" 2>/dev/null || true
    done
  }
  pgb_remove_user "${user}"
}

# Artifacts as the server keeps them: root-owned, private modes, binary content, a sentinel,
# and a config copy; beside them on the backup disk, the Borg repository. Plus traps: symlinks to
# /etc/shadow, to a private file outside the tree and to the Borg repository, in both trees.
populate_tree() {
  local base="${TREE}/postgres/basebackups/svc_basebackup_2026-01-01T02_00_00Z"
  mkdir -p "${base}/base/1" "${TREE}/postgres/wal/svc" "${TREE}/config/etc/docker" "${BORG_REPO_DIR}/data/0"
  printf '[repository]\nversion = 1\nsegments_per_dir = 1000\nid = %s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    >"${BORG_REPO_DIR}/config"
  head -c 65536 /dev/urandom >"${BORG_REPO_DIR}/data/0/1"
  chmod -R go-rwx "${BORG_REPO_DIR}"
  head -c 1048576 /dev/urandom >"${base}/base/1/16384"
  printf 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n' >"${base}/backup_label"
  head -c 65536 /dev/urandom >"${TREE}/postgres/wal/svc/000000010000000000000002"
  printf '{"log-driver": "journald"}\n' >"${TREE}/config/etc/docker/daemon.json"
  : >"${TREE}/postgres/.pgb-sentinel"
  chmod -R go-rwx "${TREE}/postgres"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${OUTSIDE}/secret"
  chmod 600 "${OUTSIDE}/secret"
  ln -s /etc/shadow "${TREE}/postgres/shadow-link"
  ln -s ../../outside/secret "${TREE}/postgres/secret-link"
  ln -s "${OUTSIDE}" "${TREE}/postgres/outside-dir"
  ln -s ../borg "${TREE}/postgres/borg-link"
  ln -s "${BORG_REPO_DIR}" "${TREE}/config/borg-abs-link"
  ln -s .. "${TREE}/config/up-link"
}

write_config() {
  cat >"$1" <<EOF
version: 1
servers:
  - name: ${SRV}
    host: 127.0.0.1
    ssh: { port: ${PORT}, user: ${PULL_USER} }
    paths:
      backupMount: ${TREE}
      artifacts: ${TREE}/postgres
      configArtifacts: ${TREE}/config
      lockFile: ${PGB_T}/run/server.lock
      scriptsDir: ${PGB_T}/sbin
    repos: { primary: ${TREE}/borg, external: null }
    borg: { passphraseFile: ${PGB_T}/secrets/pg-borg.env }
    replication: { passwordFile: ${PGB_T}/secrets/repl_password }
    services:
      - { name: svc, port: 55449, pgVersion: 15 }
devs:
  - name: ${DEV}
    pullFrom: [${SRV}]
    address: 127.0.0.1
    publicKey: "$(cat "${KEY}.pub")"
    localBase: ${PULLED}
    sshKey: ${KEY}
    knownHosts: ${KNOWN_HOSTS}
    lockFile: ${PGB_T}/dev/pull.lock
EOF
}

# Everything about the served tree: names, types, modes, owners, sizes, mtimes, link targets, content.
tree_state() {
  (cd "${TREE}" && find . -printf '%p %y %m %u %g %s %T@ %l\n' | sort && find . -type f -exec sha256sum {} + | sort)
}

# The same options as one string, for rsync -e (no option holds a space).
RSH() {
  printf 'ssh %s' "${SSH_OPTS[*]}"
}

# ssh with exactly those options; the caller adds its own options and the destination.
ssh_with_key() {
  timeout 30 ssh "${SSH_OPTS[@]}" "$@"
}

ssh_as_puller() {
  ssh_with_key "$@" "${PULL_USER}@127.0.0.1"
}

ssh_cmd() {
  ssh_with_key "${PULL_USER}@127.0.0.1" "$@"
}

rsync_as_puller() {
  timeout 30 rsync -e "$(RSH)" "$@"
}

# No attack may change the served tree, write the files it aimed at, or run the marker command.
assert_no_trace() {
  run diff <(tree_state) "${PGB_T}/tree.before"
  assert_success
  assert [ ! -e "${MARKER}" ]
  assert [ ! -e "/etc/sudoers.d/${EVIL_NAME}" ]
  assert [ ! -e "/root/${EVIL_NAME}" ]
  assert [ ! -e "/${EVIL_NAME}" ]
}

# Nothing the attacker received is a copy of /etc/shadow, of the private file outside the tree or
# of any file of the Borg repository.
assert_no_loot() {
  local f b
  while IFS= read -r -d '' f; do
    if cmp -s -- "${f}" /etc/shadow || cmp -s -- "${f}" "${OUTSIDE}/secret"; then
      fail "leaked to the client: ${f}"
    fi
    while IFS= read -r -d '' b; do
      if cmp -s -- "${f}" "${b}"; then
        fail "Borg repository file ${b} leaked to the client: ${f}"
      fi
    done < <(find "${BORG_REPO_DIR}" -type f -print0)
  done < <(find "${LOOT}" -type f -print0)
}

# The forced command, as the suite expects it in the key line and in sudo's rule.
PULL_ARGV() {
  printf '/usr/bin/rsync --server --daemon --config=%s .' "${RSYNCD_LIVE}"
}

@test "the generated key line is restricted: restrict, from= the dev address, forced sudo -n rsync daemon" {
  run cat "${PGB_T}/home/.ssh/authorized_keys"
  assert_success
  assert_equal "$(wc -l <"${PGB_T}/home/.ssh/authorized_keys")" 1
  assert_output "restrict,from=\"127.0.0.1\",command=\"sudo -n $(PULL_ARGV)\" $(cat "${KEY}.pub")"
  # The dev machine's key set-up prints the very same line.
  run bash "${GEN}/${DEV}/root/usr/local/sbin/pgb_pull_keygen.sh"
  assert_success
  assert_line "restrict,from=\"127.0.0.1\",command=\"sudo -n $(PULL_ARGV)\" $(cat "${KEY}.pub")"
  run getent passwd "${PULL_USER}"
  assert_output --regexp ':/bin/sh$'
}

@test "sudo allows the pull user exactly one command: the rsync daemon with the generated config" {
  run sudo -n -l -U "${PULL_USER}"
  assert_success
  # sudoers writes "=" in an argument as "\=", and sudo -l prints it so.
  assert_output --partial "(root) NOPASSWD: $(PULL_ARGV | sed 's/=/\\=/')"
  assert_equal "$(grep -c 'NOPASSWD' <<<"${output}")" 1
  refute_output --partial '(ALL'
  # No env_keep: sudo hands the daemon none of the client's environment.
  run cat "${SUDOERS_LIVE}"
  refute_output --partial 'env_keep'
}

@test "the daemon config serves exactly the two trees: read-only, chrooted, unlisted, no link following" {
  run grep -E '^(\[|path =)' "${RSYNCD_LIVE}"
  assert_output "$(printf '[artifacts]\npath = %s\n[config]\npath = %s' "${TREE}/postgres" "${TREE}/config")"
  local line
  for line in 'use chroot = yes' 'read only = yes' 'write only = no' 'list = no' 'uid = root' \
    'refuse options = delete remove-source-files copy-links copy-unsafe-links copy-dirlinks' \
    "pre-xfer exec = ${PGB_T}/sbin/pgb_pull_links.sh"; do
    run grep -cxF "${line}" "${RSYNCD_LIVE}"
    assert_output 1
  done
  assert_equal "$(stat -c '%U %G %a' "${RSYNCD_LIVE}")" 'root root 644'
}

@test "the generated dev pull script mirrors both trees through the forced command, without their symlinks" {
  # The suite's base backup is no real one (no backup_manifest): this machine's pg_verifybackup
  # refuses it, so it is mirrored but not kept, and the run says so (exit 1).
  run bash "${GEN}/${DEV}/root/usr/local/sbin/pull-server-backups.sh"
  assert_failure 1
  assert_output --partial "[${SRV}] svc_basebackup_2026-01-01T02_00_00Z does not verify (pg_verifybackup); not kept"
  local mirror="${PULLED}/.pgb-incoming/${SRV}"
  # The regular files byte-identical; no symlink of the served trees arrives (none of the
  # artifacts', the settings' only where they point inside the tree, and these all point out).
  run diff -r --no-dereference -x '*-link' -x 'outside-dir' "${TREE}/postgres" "${mirror}"
  assert_success
  run diff -r --no-dereference -x '*-link' "${TREE}/config" "${PULLED}/${SRV}/config"
  assert_success
  assert_equal "$(find "${PULLED}" -type l -print)" ''
  assert_equal "$(cd "${mirror}" && find . -type f -printf '%p %s\n' | sort)" \
    "$(cd "${TREE}/postgres" && find . -type f -printf '%p %s\n' | sort)"
  run find "${PULLED}" -type f -exec cmp -s {} "${OUTSIDE}/secret" \; -print
  assert_output ''
  # The backup that did not verify is not in the dev's own store; the WAL is.
  assert [ ! -e "${PULLED}/${SRV}/postgres/basebackups/svc_basebackup_2026-01-01T02_00_00Z" ]
  assert [ -f "${PULLED}/${SRV}/postgres/wal/svc/000000010000000000000002" ]
  # Exactly the two trees, and nothing of the Borg repository beside them.
  assert_equal "$(ls -A "${PULLED}/${SRV}")" "$(printf 'config\npostgres')"
  run find "${PULLED}" -type f -exec cmp -s {} "${BORG_REPO_DIR}/config" \; -print
  assert_output ''
  # The sshd log shows the forced command, i.e. the key options were applied.
  run grep -c 'forced-command' "${PGB_T}/logs/sshd.log"
  assert_success
  assert_no_trace
}

@test "pushing a file into either tree is refused and leaves no trace" {
  printf 'evil\n' >"${PGB_T}/${EVIL_NAME}"
  local dest
  for dest in ::artifacts/ ::config/ ::artifacts ::artifacts/wal/ :postgres/ :; do
    run rsync_as_puller "${PGB_T}/${EVIL_NAME}" "${PULL_USER}@127.0.0.1${dest}"
    assert_failure
  done
  assert_no_trace
}

@test "writing into /etc/sudoers.d or /root is refused, with or without --rsync-path='sudo rsync'" {
  printf 'ALL ALL=(ALL) NOPASSWD: ALL\n' >"${PGB_T}/${EVIL_NAME}"
  local dest
  for dest in :/etc/sudoers.d/ :/root/ :../../../../etc/sudoers.d/ :/ ::/etc/sudoers.d/ ::/root/ \
    ::artifacts/../../../../etc/sudoers.d/ ::artifacts//etc/sudoers.d/ ::config/../../../../root/ ::etc/sudoers.d/ ::root/; do
    run rsync_as_puller "${PGB_T}/${EVIL_NAME}" "${PULL_USER}@127.0.0.1${dest}"
    assert_failure
    run rsync_as_puller --rsync-path='sudo rsync' "${PGB_T}/${EVIL_NAME}" "${PULL_USER}@127.0.0.1${dest}"
    assert_failure
  done
  assert_no_trace
}

@test "deleting on the server (--remove-source-files, --delete pushes) is refused and leaves no trace" {
  run rsync_as_puller -a --remove-source-files "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/"
  assert_failure
  assert_output --partial 'refuse --remove-source-files'
  run rsync_as_puller -a -M--remove-source-files "${PULL_USER}@127.0.0.1::config/" "${LOOT}/"
  assert_failure
  mkdir -p "${PGB_T}/empty"
  run rsync_as_puller -a --delete "${PGB_T}/empty/" "${PULL_USER}@127.0.0.1::artifacts/"
  assert_failure
  run rsync_as_puller -a --delete "${PGB_T}/empty/" "${PULL_USER}@127.0.0.1:postgres/"
  assert_failure
  assert_no_trace
}

@test "reading outside the two trees with .. or absolute paths is refused" {
  local src
  for src in ::artifacts/../../../etc/shadow ::artifacts/../../outside/secret ::config/../../outside/secret \
    ::artifacts//etc/shadow "::artifacts/${OUTSIDE}/secret" ::/etc/shadow ::/etc/ ::etc/shadow "::${OUTSIDE}/secret" \
    :../../../etc/shadow :postgres/../../../etc/shadow :/etc/shadow :/etc/ ":${OUTSIDE}/secret" :../outside/secret; do
    run rsync_as_puller -a "${PULL_USER}@127.0.0.1${src}" "${LOOT}/"
    assert_failure
  done
  assert_no_loot
  assert_no_trace
}

@test "the Borg repository beside the two trees cannot be read, by module, path, .. or symlink" {
  local src
  # As a module of its own, as a path of the backup disk, and from inside each tree.
  for src in ::borg/ ::borg/config ::backup/borg/ ::postgres/../borg/ "::${BORG_REPO_DIR}/" "::${BORG_REPO_DIR}/config" \
    ::artifacts/../borg/ ::artifacts/../borg/config ::config/../borg/ ::config/../borg/data/0/1 \
    ::artifacts/borg-link/ ::artifacts/borg-link/config ::config/borg-abs-link/config ::config/up-link/borg/config \
    :borg/ :borg/config :../borg/ ":${BORG_REPO_DIR}/config"; do
    run rsync_as_puller -a "${PULL_USER}@127.0.0.1${src}" "${LOOT}/"
    assert_failure
  done
  # Link-following options are refused outright; the links arrive as links only.
  run rsync_as_puller -a -L "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/"
  assert_failure
  run rsync_as_puller -a --copy-dirlinks "${PULL_USER}@127.0.0.1::config/" "${LOOT}/"
  assert_failure
  # The whole of each tree: nothing of the repository comes along.
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/a/"
  assert_success
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1::config/" "${LOOT}/c/"
  assert_success
  assert [ -L "${LOOT}/a/borg-link" ]
  assert [ -L "${LOOT}/c/borg-abs-link" ]
  assert_no_loot
  assert_no_trace
}

@test "no path outside the two modules exists for the key: no listing, no other module name" {
  # A module listing (list = no): nothing is named, not even the two modules.
  run rsync_as_puller "${PULL_USER}@127.0.0.1::"
  refute_output --partial artifacts
  refute_output --partial config
  refute_output --partial borg
  # Any other module name is unknown, whatever the backup disk holds.
  local module
  for module in borg backup postgres etc root . .. '*' 'art*' artifacts.. Artifacts; do
    run rsync_as_puller -a "${PULL_USER}@127.0.0.1::${module}/" "${LOOT}/"
    (( status != 0 )) || fail "module ${module} was served"
  done
  # The server's own rsync root (the old single-colon form) serves nothing at all now.
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1:postgres/" "${LOOT}/"
  assert_failure
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1:" "${LOOT}/"
  assert_failure
  # Inside a module, .. never climbs above it: what arrives is that module's own content.
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1::config/../../" "${LOOT}/up/"
  if (( status == 0 )); then
    assert_equal "$(cd "${LOOT}/up" && find . ! -name . -printf '%p\n' | sort)" \
      "$(cd "${TREE}/config" && find . ! -name . -printf '%p\n' | sort)"
  fi
  assert_no_loot
  assert_no_trace
}

@test "symlinks inside the tree never leak their targets (-L, -k, --copy-unsafe-links, through a dir link)" {
  local opt
  # Options that make the sending side follow links: the daemon config refuses them.
  for opt in -L -k --copy-links --copy-unsafe-links --copy-dirlinks; do
    run rsync_as_puller -a "${opt}" "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/"
    (( status != 0 )) || fail "rsync ${opt} was not refused"
  done
  # -K only changes the client's own side: allowed, and the links still arrive as links.
  run rsync_as_puller -a -K "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/k/"
  assert_success
  assert [ -L "${LOOT}/k/shadow-link" ]
  # Through a directory symlink, and the file symlinks named directly.
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1::artifacts/outside-dir/secret" "${LOOT}/"
  assert_failure
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1::artifacts/outside-dir/" "${LOOT}/dir/"
  assert_failure
  run rsync_as_puller "${PULL_USER}@127.0.0.1::artifacts/shadow-link" "${LOOT}/"
  run rsync_as_puller "${PULL_USER}@127.0.0.1::artifacts/secret-link" "${LOOT}/"
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1::artifacts/shadow-link" "${LOOT}/l/"
  assert [ -L "${LOOT}/l/shadow-link" ]
  assert_no_loot
  assert_no_trace
}

@test "a hard link planted in a tree to a file outside it refuses the transfer; links between backup files are served" {
  local wal="${TREE}/postgres/wal/svc" base="${TREE}/postgres/basebackups/svc_basebackup_2026-01-01T02_00_00Z"
  touch -r "${wal}" "${PGB_T}/wal.mtime"
  touch -r "${base}" "${PGB_T}/base.mtime"
  touch -r "${TREE}/config" "${PGB_T}/config.mtime"
  # As root (or the file's owner) could plant it: a root-only file of the Borg repository, same disk.
  ln -- "${BORG_REPO_DIR}/config" "${wal}/000000010000000000000003"
  # And one whose name has spaces at both ends, in the settings tree.
  ln -- "${OUTSIDE}/secret" "${TREE}/config/ secret "
  run rsync_as_puller -r "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/"
  assert_failure
  assert_output --partial "pgb: refused: ${TREE}/postgres holds hard links to files outside it"
  assert_output --partial "wal/svc/000000010000000000000003 (2 links, 1 in the tree)"
  run rsync_as_puller -r "${PULL_USER}@127.0.0.1::artifacts/wal/svc/000000010000000000000003" "${LOOT}/"
  assert_failure
  run rsync_as_puller -r "${PULL_USER}@127.0.0.1::config/" "${LOOT}/"
  assert_failure
  assert_output --partial "pgb: refused: ${TREE}/config holds hard links"
  assert_output --partial "\\ secret\\  (2 links, 1 in the tree)"
  assert_no_loot
  assert_equal "$(find "${LOOT}" -type f | wc -l)" 0
  # The dev's pull stops at the sentinel's listing: nothing of the tree is pulled.
  run bash "${GEN}/${DEV}/root/usr/local/sbin/pull-server-backups.sh"
  assert_failure 1
  assert_output --partial "pgb: refused"
  run find "${PULLED}" -type f -exec cmp -s {} "${BORG_REPO_DIR}/config" \; -print
  assert_output ''
  rm -f -- "${wal}/000000010000000000000003"
  # A link between two backup files (raw backups sharing a file) is served as ever.
  ln -- "${wal}/000000010000000000000002" "${base}/000000010000000000000002"
  run rsync_as_puller -r "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/"
  assert_success
  cmp -- "${LOOT}/basebackups/svc_basebackup_2026-01-01T02_00_00Z/000000010000000000000002" "${wal}/000000010000000000000002"
  rm -f -- "${base}/000000010000000000000002" "${TREE}/config/ secret "
  touch -r "${PGB_T}/wal.mtime" "${wal}"
  touch -r "${PGB_T}/base.mtime" "${base}"
  touch -r "${PGB_T}/config.mtime" "${TREE}/config"
  assert_no_loot
}

@test "rsync -e / --rsync-path command execution on the server is refused" {
  # Whatever the client puts in SSH_ORIGINAL_COMMAND, sshd runs the forced daemon, which reads
  # a module request and never a command.
  run ssh_cmd "rsync --server --sender -e 'sh -c \"touch ${MARKER}\"' . postgres/" </dev/null
  assert_failure
  run ssh_cmd "rsync --server --sender -vlogDtpre.iLsfxCIvu --rsh='touch ${MARKER}' . postgres/" </dev/null
  assert_failure
  run ssh_cmd "touch ${MARKER}; rsync --server --sender -vlogDtpre.iLsfxCIvu . postgres/" </dev/null
  assert_failure
  run ssh_cmd "rsync --server --sender -vlogDtpre.iLsfxCIvu . postgres/ \$(touch ${MARKER})" </dev/null
  assert_failure
  run ssh_cmd "rsync --server --daemon --config=${PGB_T}/${EVIL_NAME} ." </dev/null
  assert_failure
  run rsync_as_puller -a --rsync-path="touch ${MARKER}; rsync" "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/"
  run rsync_as_puller -a --rsync-path="sudo rsync" "${PULL_USER}@127.0.0.1:/etc/shadow" "${LOOT}/"
  assert_failure
  # A remote shell for a second hop: -e on the server side is never honoured.
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/" --rsync-path="rsync -e 'sh -c \"touch ${MARKER}\"'"
  # Options smuggled to the daemon side with -M: a command, another config, another log, a daemon.
  printf 'use chroot = no\n[all]\npath = /\n' >"${PGB_T}/${EVIL_NAME}.conf"
  local opt
  for opt in "--rsh=touch ${MARKER}" "-esh -c 'touch ${MARKER}'" "--config=${PGB_T}/${EVIL_NAME}.conf" \
    "--dparam=use chroot=no" --daemon "--log-file=${MARKER}" "--files-from=/etc/shadow" --insecure-links; do
    run rsync_as_puller -a "-M${opt}" "${PULL_USER}@127.0.0.1::artifacts/" "${LOOT}/m/"
  done
  run rsync_as_puller -a "${PULL_USER}@127.0.0.1::all/etc/shadow" "${LOOT}/"
  assert_failure
  assert_no_loot
  assert_no_trace
}

@test "no shell: plain commands, an interactive login and sudo through ssh all fail" {
  local cmd
  for cmd in id "sh -c id" "/bin/bash -i" "sudo -n id" "sudo -n /usr/bin/rsync --server --daemon ." "cat /etc/shadow"; do
    run ssh_cmd "${cmd}" </dev/null
    assert_failure
    refute_output --partial 'uid='
    refute_output --partial 'root:'
  done
  run ssh_as_puller -T </dev/null
  assert_failure
  refute_output --partial 'uid='
  run ssh_as_puller -T <<<'id; touch '"${MARKER}"
  assert_failure
  refute_output --partial 'uid='
  assert_no_trace
}

@test "no PTY: ssh -tt is refused a terminal and gets no shell" {
  run ssh_as_puller -tt <<<'id; touch '"${MARKER}"
  assert_failure
  assert_output --partial 'PTY allocation request failed'
  refute_output --partial 'uid='
  assert_no_trace
}

@test "no port forwarding: -W, -L and -R are all refused" {
  # -W: a direct-tcpip channel to the sshd itself.
  run ssh_with_key -W "127.0.0.1:${PORT}" "${PULL_USER}@127.0.0.1" </dev/null
  assert_failure
  refute_output --partial 'SSH-2.0'
  # -R: the server refuses to listen for us.
  run ssh_with_key -N -o ExitOnForwardFailure=yes -R "127.0.0.1:55442:127.0.0.1:${PORT}" "${PULL_USER}@127.0.0.1"
  assert_failure
  assert_output --partial 'forwarding failed'
  # -L: the local end listens, but the server refuses the channel when it is used.
  timeout 600 ssh "${SSH_OPTS[@]}" -N -o ExitOnForwardFailure=yes -L "127.0.0.1:55443:127.0.0.1:${PORT}" "${PULL_USER}@127.0.0.1" \
    2>"${PGB_T}/logs/forward-L.err" &
  local fwd_pid=$!
  pgb_started_add pid "${fwd_pid}"
  pgb_wait_for "the -L forward's local end on 127.0.0.1:55443" 120 "forward_state" pgb_port_open 55443
  local banner
  banner="$(timeout 60 bash -c 'exec 3<>/dev/tcp/127.0.0.1/55443 && head -c 7 <&3' 2>/dev/null || true)"
  pgb_wait_for "the server to refuse the forwarded channel" 120 "forward_state" \
    grep -q 'administratively prohibited' "${PGB_T}/logs/forward-L.err"
  kill -TERM "${fwd_pid}" 2>/dev/null || true
  wait "${fwd_pid}" 2>/dev/null || true
  pgb_started_remove pid "${fwd_pid}"
  assert_equal "${banner}" ''
  run cat "${PGB_T}/logs/forward-L.err"
  assert_output --partial 'administratively prohibited'
  assert_no_trace
}

@test "sudo with any other argv is refused for the pull user" {
  local -a argv
  local attempt
  printf 'use chroot = no\n[all]\npath = /\n' >"${PGB_T}/${EVIL_NAME}.conf"
  for attempt in \
    "/usr/bin/rsync --server --daemon ." \
    "/usr/bin/rsync --server --daemon --config=${PGB_T}/${EVIL_NAME}.conf ." \
    "/usr/bin/rsync --server --daemon --config ${RSYNCD_LIVE} ." \
    "/usr/bin/rsync --server --daemon --config=${RSYNCD_LIVE} --dparam=usechroot=no ." \
    "/usr/bin/rsync --server --daemon --config=${RSYNCD_LIVE} . extra" \
    "/usr/bin/rsync --server --daemon --config=${RSYNCD_LIVE}" \
    "/usr/bin/rsync --daemon --config=${RSYNCD_LIVE} ." \
    "/usr/bin/rsync --daemon --config=${RSYNCD_LIVE} --port=55444 --address=127.0.0.1" \
    "/usr/bin/rsync --server --sender -e.Lsfx . /etc/shadow" \
    "/usr/bin/rsync --server --sender -e.Lsfx . ${BORG_REPO_DIR}/config" \
    "/usr/bin/rrsync -ro /" \
    "/usr/bin/rrsync -ro ${TREE}" \
    "/usr/bin/rsync --version" \
    "/usr/bin/id" \
    "/bin/sh -c id"; do
    read -r -a argv <<<"${attempt}"
    run runuser -u "${PULL_USER}" -- sudo -n "${argv[@]}"
    assert_failure
    assert_output --partial 'password is required'
    refute_output --partial 'uid=0'
  done
  # The one allowed argv, run the way sshd runs it, works (positive control): the daemon greets.
  read -r -a argv <<<"$(PULL_ARGV)"
  run runuser -u "${PULL_USER}" -- sudo -n "${argv[@]}" </dev/null
  refute_output --partial 'password is required'
  assert_output --partial '@RSYNCD:'
  assert_no_trace
}
