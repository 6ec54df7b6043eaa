# A systemd host for a suite: a systemd-nspawn container booted from this machine's own root file
# system (an overlay whose writes land in a tmpfs, so the machine is never changed), systemd as
# PID 1, a private network (loopback only), or with CT_NETWORK=host the network namespace the suite
# runs in (its own netns: the container then reaches servers the suite runs on 127.0.0.1). Set
# PGB_T (pgb_scratch_init) and CT_ROOT first, CT_NAME to name the machine (default pgbtest<pid>);
# ct_boot starts it and records it for teardown, ct_stop stops it.

# Its own machine id (journald refuses to share the host's); services no suite needs masked.
ct_prepare_root() {
  local unit
  systemd-id128 new >"${CT_ROOT}/etc/machine-id"
  for unit in postgresql.service ssh.service sysstat.service cron.service apt-daily.timer \
    apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    man-db.timer getty@tty1.service console-getty.service systemd-timesyncd.service; do
    ln -sf /dev/null "${CT_ROOT}/etc/systemd/system/${unit}"
  done
}

# Mounts the overlay root at CT_ROOT (this machine's / read-only below, changes in a tmpfs above).
ct_make_root() {
  # Under `ip netns exec` (a suite's own ports) /sys comes without the cgroups nspawn needs.
  pgb_cgroups_mount
  pgb_mount_tmpfs "${PGB_T}/ov" 2g
  mkdir -p "${PGB_T}/ov/upper" "${PGB_T}/ov/work" "${CT_ROOT}"
  mount -t overlay pgb-itest-ct -o "lowerdir=/,upperdir=${PGB_T}/ov/upper,workdir=${PGB_T}/ov/work" "${CT_ROOT}"
  pgb_started_add mount "${CT_ROOT}"
  ct_prepare_root
}

# ct_boot [EXTRA_NSPAWN_ARGS...]: boots the container and waits until its systemd is up.
ct_boot() {
  export CT_NAME="${CT_NAME:-pgbtest$$}"
  local net=(--private-network)
  [[ "${CT_NETWORK:-private}" != host ]] || net=()
  # --keep-unit --register=no: this machine runs no systemd of its own to register with.
  # cgroup v2 inside, bpf() allowed and CAP_BPF kept: without them the container's systemd
  # cannot enforce IPAddressDeny= (it warns once and runs the unit unfiltered).
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --quiet --directory="${CT_ROOT}" --boot \
    "${net[@]}" --register=no --keep-unit --machine="${CT_NAME}" \
    --system-call-filter=bpf --capability=CAP_BPF,CAP_NET_ADMIN \
    "$@" --console=pipe \
    </dev/null >"${PGB_T}/logs/nspawn.log" 2>&1 &
  export NSPAWN_PID=$!
  pgb_started_add pid "${NSPAWN_PID}"
  printf '%s\n' "${NSPAWN_PID}" >"${PGB_T}/nspawn.pid"
  wait_for_boot
}

# The container's PID 1 as this machine sees it: the child of systemd-nspawn.
container_pid() {
  local pid
  read -r pid _ <"/proc/${NSPAWN_PID}/task/${NSPAWN_PID}/children" 2>/dev/null || true
  printf '%s' "${pid}"
}

# In a test's setup: the container of setup_file, or a failure that says it is gone.
ct_attach() {
  NSPAWN_PID="$(cat "${PGB_T}/nspawn.pid")"
  CT_PID="$(container_pid)"
  [[ -n "${CT_PID}" ]] || fail "the container is not running: $(tail -n 20 "${PGB_T}/logs/nspawn.log")"
}

# Runs a command inside the container (all its namespaces), with the caller's environment.
in_ct() {
  nsenter --target "${CT_PID}" --all -- "$@"
}

# The container's systemd has finished booting (running, or degraded by a unit the test masks).
ct_booted() {
  CT_PID="$(container_pid)"
  [[ -n "${CT_PID}" ]] || return 1
  local state
  state="$(in_ct systemctl is-system-running 2>/dev/null || true)"
  [[ "${state}" == running || "${state}" == degraded ]]
}

# Everything needed to understand a wait that ran out: the container's state, its failed and
# pending units, the units in CT_DIAG_UNITS (status and journal), the nspawn log.
CT_DIAG_UNITS=()
ct_diagnose() {
  local unit
  CT_DIAGNOSED=1
  printf -- '--- container: nspawn pid %s, PID 1 %s ---\n' "${NSPAWN_PID:-?}" "${CT_PID:-?}"
  if [[ -n "${CT_PID:-}" ]] && kill -0 "${CT_PID}" 2>/dev/null; then
    in_ct systemctl is-system-running 2>&1 || true
    in_ct systemctl --no-pager list-jobs 2>&1 || true
    in_ct systemctl --no-pager --failed 2>&1 || true
    for unit in "${CT_DIAG_UNITS[@]}"; do
      in_ct systemctl --no-pager --lines=0 status "${unit}" 2>&1 || true
      in_ct journalctl --no-pager -n 60 -u "${unit}" 2>&1 || true
    done
  fi
  pgb_tail_file "${PGB_T}/logs/nspawn.log"
}

# It booted, or systemd-nspawn has exited (then waiting longer is pointless).
ct_boot_settled() {
  ct_booted || pgb_pid_gone "${NSPAWN_PID}"
}

wait_for_boot() {
  CT_DIAG_UNITS=()
  pgb_wait_for "the container's systemd to finish booting" 300 ct_diagnose ct_boot_settled
  ct_booted || {
    printf 'systemd-nspawn (pid %s) exited before the container booted\n' "${NSPAWN_PID}" >&2
    ct_diagnose >&2
    return 1
  }
}

ct_stop() {
  local pid
  pid="$(cat "${PGB_T}/nspawn.pid" 2>/dev/null)" || return 0
  kill -0 "${pid}" 2>/dev/null || return 0
  # SIGTERM to systemd-nspawn shuts a booted container down in order.
  kill -TERM "${pid}" 2>/dev/null || true
  pgb_wait_for "systemd-nspawn (pid ${pid}) to shut the container down" 120 - pgb_pid_gone "${pid}" && return 0
  kill -KILL "${pid}" 2>/dev/null || true
  pgb_wait_for "systemd-nspawn (pid ${pid}) to exit after SIGKILL" 60 - pgb_pid_gone "${pid}"
}

# In teardown_file: a set-up that failed outside a wait (which has said its piece) still shows
# the container; then it is stopped.
ct_teardown() {
  if pgb_setup_file_failed && [[ -n "${CT_PID:-}" && -z "${CT_DIAGNOSED:-}" ]]; then
    ct_diagnose >&2
  fi
  ct_stop || true
}

# The container's systemd has no job left.
ct_no_jobs() {
  [[ -z "$(in_ct systemctl list-jobs --no-legend 2>/dev/null)" ]]
}

# ct_run_block FILE: a README block (helpers/runbook.bash) runs in the bundle's directory
# (/root/bundle) inside the container, as root, under strict mode.
ct_run_block() {
  local name
  name="$(basename "$1")"
  install -D -m 0644 "$1" "${CT_ROOT}/root/runbook/${name}"
  in_ct env --chdir=/root/bundle bash -euo pipefail "/root/runbook/${name}"
}

# `Result ExecMainStatus` of a unit, e.g. "success 0".
unit_result() {
  in_ct systemctl show -p Result -p ExecMainStatus --value "$1" | paste -sd' '
}
