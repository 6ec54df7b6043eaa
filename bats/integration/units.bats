#!/usr/bin/env bats
# The generated systemd units, checked with systemd's own tools: `systemd-analyze verify` prints
# nothing for any unit, and `systemd-analyze security --offline=yes` (scripts/exposure.sh) scores
# every service unit at most 1.5. Two configs: the repo's example, and a variant that takes the
# other template branches (host names, a remote primary repository, no external drive, homes).

setup_file() {
  load helpers/common
  pgb_require_root
  command -v systemd-analyze >/dev/null || { printf 'systemd-analyze missing (apt-get install systemd)\n' >&2; return 1; }
  command -v unshare >/dev/null || { printf 'unshare missing (apt-get install util-linux)\n' >&2; return 1; }
  pgb_scratch_init
  export GEN_EXAMPLE="${PGB_T}/gen-example"
  export GEN_VARIANT="${PGB_T}/gen-variant"
  pgb_generate "${PGB_REPO_ROOT}/pgb.config.yaml" "${GEN_EXAMPLE}" >/dev/null
  cat >"${PGB_T}/variant.yaml" <<'EOF'
version: 1
servers:
  - name: variant-srv
    host: backup-host.example.org
    schedule: "Mon..Fri 01:30"
    repos:
      primary: ssh://borg@borg.example.org:2222/srv/borg/variant
      external: null
    services:
      - { name: svc_one, host: db.example.org, port: 5432, pgVersion: 16 }
    configPaths: [/etc/docker, /home/admin/compose]
devs:
  - name: variant-dev
    schedule: "04:15"
    pullFrom: [variant-srv]
    localBase: /home/backup/pulled
EOF
  pgb_generate "${PGB_T}/variant.yaml" "${GEN_VARIANT}" >/dev/null
}

teardown_file() {
  load helpers/common
  pgb_teardown_all
}

setup() {
  load helpers/common
  pgb_load_bats_libs
}

# The unit files of one generated host.
host_units() {
  find "$1/root/etc/systemd/system" -maxdepth 1 -type f \( -name '*.service' -o -name '*.timer' \) | sort
}

# systemd-analyze verify on all units of a host. Their ExecStart scripts must exist, so the host's
# generated scripts dir is bind-mounted over /usr/local/sbin in a private mount namespace: the
# machine's own /usr/local/sbin is never touched.
verify_host() {
  local host_dir="$1"
  local -a units
  mapfile -t units < <(host_units "${host_dir}")
  (( ${#units[@]} > 0 )) || return 1
  # shellcheck disable=SC2016
  unshare --mount --propagation private bash -c '
    set -e
    mount --bind "$1/root/usr/local/sbin" /usr/local/sbin
    shift
    systemd-analyze verify "$@"
  ' _ "${host_dir}" "${units[@]}" 2>&1
}

@test "systemd-analyze verify prints nothing for any unit of the example config" {
  local host
  for host in "${GEN_EXAMPLE}"/*/; do
    [[ -d "${host}root/etc/systemd/system" ]] || continue
    run verify_host "${host%/}"
    assert_success
    assert_output ''
  done
}

@test "systemd-analyze verify prints nothing for any unit of the variant config" {
  local host
  for host in "${GEN_VARIANT}"/*/; do
    [[ -d "${host}root/etc/systemd/system" ]] || continue
    run verify_host "${host%/}"
    assert_success
    assert_output ''
  done
}

@test "every generated service unit scores at most 1.5 (scripts/exposure.sh)" {
  local gen services
  for gen in "${GEN_EXAMPLE}" "${GEN_VARIANT}"; do
    run "${PGB_REPO_ROOT}/scripts/exposure.sh" "${gen}"
    printf '%s\n' "${output}" >&3
    assert_success
    services="$(find "${gen}" -path '*/root/etc/systemd/system/*.service' | wc -l)"
    assert_output --partial "${services} unit(s), worst "
    refute_output --partial 'NOT RATED'
    refute_output --partial 'ABOVE'
  done
  run "${PGB_REPO_ROOT}/scripts/exposure.sh" "${GEN_EXAMPLE}"
  assert_output --regexp 'pg-backup-all\.service +(0\.[0-9]|1\.[0-5])'
  assert_output --regexp 'pgb-borg-primary\.service +(0\.[0-9]|1\.[0-5])'
  assert_output --regexp 'pgb-borg-external\.service +(0\.[0-9]|1\.[0-5])'
  assert_output --regexp 'pull-server-backups\.service +(0\.[0-9]|1\.[0-5])'
}

@test "exposure.sh fails on a unit above the limit (the runbook's unit)" {
  local dir="${PGB_T}/runbook/host/root/etc/systemd/system"
  mkdir -p "${dir}"
  printf '[Unit]\nDescription=runbook\n[Service]\nType=oneshot\nUser=root\nExecStart=/usr/local/sbin/pg_backup_all.sh\n' \
    >"${dir}/pg-backup-all.service"
  run "${PGB_REPO_ROOT}/scripts/exposure.sh" "${PGB_T}/runbook"
  assert_failure 1
  assert_output --regexp 'pg-backup-all\.service +9\.[0-9]  ABOVE 1\.5'
}

@test "every sandbox directive of every service unit has a comment above it" {
  local unit bad
  while IFS= read -r unit; do
    bad="$(awk '
      /^#/ { commented = 1; next }
      /^[[:space:]]*$/ { commented = 0; next }
      /^\[/ { commented = 0; next }
      /^(Protect|Private|Restrict|Capability|AmbientCapabilities|NoNewPrivileges|SystemCall|IPAddress|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|ProcSubset|Device|LockPersonality|MemoryDeny|KeyringMode|UMask|StateDirectory|RemoveIPC|User=|DynamicUser)/ {
        if (!commented) print FILENAME ": " $0
      }' "${unit}")"
    [[ -z "${bad}" ]] || fail "directive without a comment: ${bad}"
  done < <(find "${GEN_EXAMPLE}" "${GEN_VARIANT}" -path '*/root/etc/systemd/system/*.service')
}

@test "the backup unit pulls in the Borg units; the external drive has its own unit, after the primary" {
  local sys="${GEN_EXAMPLE}/main-server/root/etc/systemd/system"
  run grep -x 'Wants=pgb-borg-primary.service pgb-borg-external.service' "${sys}/pg-backup-all.service"
  assert_success
  run grep -x 'ExecStart=/usr/local/sbin/borg_pg_artifacts.sh primary' "${sys}/pgb-borg-primary.service"
  assert_success
  run grep -x 'ExecStart=/usr/local/sbin/borg_pg_artifacts.sh external' "${sys}/pgb-borg-external.service"
  assert_success
  run grep -x 'After=pg-backup-all.service pgb-borg-primary.service' "${sys}/pgb-borg-external.service"
  assert_success
  # A missing drive must fail, never look like a skip.
  run grep -rl 'ConditionPathIsMountPoint' "${GEN_EXAMPLE}" "${GEN_VARIANT}"
  assert_failure
  # Without an external repository there is no external unit and nothing wants one.
  local vsys="${GEN_VARIANT}/variant-srv/root/etc/systemd/system"
  assert [ ! -e "${vsys}/pgb-borg-external.service" ]
  run grep -x 'Wants=pgb-borg-primary.service' "${vsys}/pg-backup-all.service"
  assert_success
}

@test "borg check runs from its own weekly timer, on both repositories, never in the nightly units" {
  local sys="${GEN_EXAMPLE}/main-server/root/etc/systemd/system"
  local vsys="${GEN_VARIANT}/variant-srv/root/etc/systemd/system"
  run grep -x 'ExecStart=/usr/local/sbin/borg_pg_artifacts.sh check all' "${sys}/pgb-borg-check.service"
  assert_success
  run grep -x -e 'Unit=pgb-borg-check.service' -e 'OnCalendar=Sun 04:30' -e 'Persistent=true' -e 'WantedBy=timers.target' \
    "${sys}/pgb-borg-check.timer"
  assert_equal "${#lines[@]}" 4
  run systemd-analyze calendar 'Sun 04:30'
  assert_success
  # Borg's lock files live in the repositories: both writable, nothing else but the lock dir and
  # the metrics directory (node_exporter's textfiles).
  run grep -x 'ReadWritePaths=-/mnt/backup/borg -/media/usb/borg /run/lock -/var/lib/prometheus/node-exporter' "${sys}/pgb-borg-check.service"
  assert_success
  # A remote primary and no external drive: network allowed, nothing local to write but the lock dir.
  run grep -x 'ReadWritePaths=/run/lock -/var/lib/prometheus/node-exporter' "${vsys}/pgb-borg-check.service"
  assert_success
  run grep -c -x 'PrivateNetwork=yes' "${vsys}/pgb-borg-check.service"
  assert_output 0
  # The installer enables the timer; nothing else starts a check.
  run grep -x "readonly ENABLE_UNITS=.*'pgb-borg-check.timer'.*" "${GEN_EXAMPLE}/main-server/install.sh"
  assert_success
  run grep -l 'borg_pg_artifacts.sh check' -r "${sys}"
  assert_output "${sys}/pgb-borg-check.service"
}

@test "timers fire on the configured schedule and catch up missed runs" {
  local t
  t="${GEN_VARIANT}/variant-srv/root/etc/systemd/system/pg-backup-all.timer"
  run grep -x -e 'OnCalendar=Mon..Fri 01:30' -e 'Persistent=true' -e 'WantedBy=timers.target' "${t}"
  assert_equal "${#lines[@]}" 3
  t="${GEN_VARIANT}/variant-dev/root/etc/systemd/system/pull-server-backups.timer"
  run grep -x -e 'OnCalendar=04:15' -e 'Persistent=true' "${t}"
  assert_equal "${#lines[@]}" 2
  run systemd-analyze calendar 'Mon..Fri 01:30'
  assert_success
}

@test "the sandbox follows the work: network, writable paths and homes per unit" {
  local ex="${GEN_EXAMPLE}/main-server/root/etc/systemd/system"
  local va="${GEN_VARIANT}/variant-srv/root/etc/systemd/system"
  local dv="${GEN_VARIANT}/variant-dev/root/etc/systemd/system"
  # Local repositories: Borg gets no network at all; the backup unit reaches only the services.
  run grep -x -e 'PrivateNetwork=yes' -e 'IPAddressDeny=any' "${ex}/pgb-borg-primary.service"
  assert_equal "${#lines[@]}" 2
  run grep -x -e 'IPAddressDeny=any' -e 'IPAddressAllow=127.0.0.1' "${ex}/pg-backup-all.service"
  assert_equal "${#lines[@]}" 2
  run grep -x 'ReadWritePaths=/mnt/backup /run/lock -/var/lib/prometheus/node-exporter' "${ex}/pg-backup-all.service"
  assert_success
  run grep -x 'ReadWritePaths=-/media/usb/borg /run/lock -/var/lib/prometheus/node-exporter' "${ex}/pgb-borg-external.service"
  assert_success
  # A remote primary: network and read-only homes (root's ssh key), no IP allow list by name.
  run grep -c -x -e 'PrivateNetwork=yes' "${va}/pgb-borg-primary.service"
  assert_output 0
  run grep -x 'ProtectHome=read-only' "${va}/pgb-borg-primary.service"
  assert_success
  # Services named by host name: name resolution allowed, no IP allow list possible.
  run grep -x 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' "${va}/pg-backup-all.service"
  assert_success
  run grep -c '^IPAddressDeny' "${va}/pg-backup-all.service"
  assert_output 0
  # configPaths and the dev's pulled copies under /home: homes readable, not writable.
  run grep -x 'ProtectHome=read-only' "${va}/pg-backup-all.service" "${dv}/pull-server-backups.service"
  assert_equal "${#lines[@]}" 2
  run grep -x 'ReadWritePaths=/home/backup/pulled /run/lock -/var/lib/prometheus/node-exporter' "${dv}/pull-server-backups.service"
  assert_success
}
