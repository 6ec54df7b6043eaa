# A test sshd on 127.0.0.1: key logins only, one user, one authorized_keys file (whose lines say
# what the key may run), host key pinned into a known_hosts for the client. Logged VERBOSE.

# pgb_sshd_start DIR PORT USER AUTHORIZED_KEYS KNOWN_HOSTS: writes DIR/sshd_config and a host key,
# pins it in KNOWN_HOSTS, starts sshd (registered for teardown) and waits until it listens.
pgb_sshd_start() {
  local dir="$1" port="$2" user="$3" keys="$4" known="$5" root_login=no
  [[ "${user}" != root ]] || root_login=forced-commands-only
  pgb_sshd_privsep_dir
  mkdir -p "${dir}"
  ssh-keygen -q -t ed25519 -N '' -C host -f "${dir}/host_key"
  printf '[127.0.0.1]:%s %s\n' "${port}" "$(cut -d' ' -f1,2 "${dir}/host_key.pub")" >>"${known}"
  chmod 600 "${known}"
  cat >"${dir}/sshd_config" <<EOC
Port ${port}
ListenAddress 127.0.0.1
HostKey ${dir}/host_key
PidFile ${dir}/sshd.pid
AuthorizedKeysFile ${keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin ${root_login}
AllowUsers ${user}
LogLevel VERBOSE
EOC
  /usr/sbin/sshd -t -f "${dir}/sshd_config"
  /usr/sbin/sshd -D -f "${dir}/sshd_config" -E "${PGB_T}/logs/sshd.log" &
  pgb_started_add pid "$!"
  pgb_wait_for "the test sshd to listen on 127.0.0.1:${port}" 120 pgb_sshd_state pgb_port_open "${port}"
}

pgb_sshd_state() {
  pgb_tail_file "${PGB_T}/logs/sshd.log"
}

# pgb_sshd_stop: stops the suite's sshd processes and waits until they are gone (call before
# pgb_teardown_all).
pgb_sshd_stop() {
  local kind arg
  while read -r kind arg; do
    if [[ "${kind}" == pid ]] && pgb_started_kill pid "${arg}" TERM; then
      pgb_wait_for "pid ${arg} to exit" 60 - pgb_pid_gone "${arg}" || true
    fi
  done < <(tac "${PGB_T}/.started")
}

# pgb_dev_devs_yaml DEV SERVER: the devs: section (PGB_DEVS_YAML) of a dev machine DEV pulling
# from SERVER, its files under the scratch root's dev/.
pgb_dev_devs_yaml() {
  printf '%s\n' "devs:
  - name: $1
    pullFrom: [$2]
    address: 127.0.0.1
    localBase: @PGB_T@/dev/upload
    sshKey: @PGB_T@/dev/key
    knownHosts: @PGB_T@/dev/known_hosts
    lockFile: @PGB_T@/dev/pull.lock"
}

# pgb_pull_daemon_start PORT: after pgb_server_setup with pgb_dev_devs_yaml's dev: the dev's pull
# key, and a real sshd on PORT whose forced command runs the GENERATED rsync daemon config as root
# (what sudo gives it on a server), its pre-transfer check the generated script from the build.
# Exports KEY, KNOWN_HOSTS and DEV_BASE.
pgb_pull_daemon_start() {
  local port="$1"
  export KEY="${PGB_T}/dev/key" KNOWN_HOSTS="${PGB_T}/dev/known_hosts" DEV_BASE="${PGB_T}/dev/upload"
  mkdir -p "${PGB_T}/dev"
  ssh-keygen -q -t ed25519 -N '' -C dev -f "${KEY}"
  pgb_pull_sshd_start "${KEY}" "${port}" "${KNOWN_HOSTS}"
}
