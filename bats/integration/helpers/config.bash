# A pgb.config.yaml for a test server whose every path lives under the scratch root PGB_T.
# Knobs (environment, with defaults): PGB_SERVER_NAME, PGB_SERVICES ("name:port ..."),
# PGB_RAW_DAYS, PGB_KEEP_DAILY/WEEKLY/MONTHLY, PGB_EXT_RESERVE, PGB_EXT_WARN_FREE,
# PGB_EXT_MAX_PRUNE, PGB_PARALLEL_JOBS, PGB_ALLOWED_SUBNET, PGB_WAL (services' wal: true|false),
# PGB_DOCKER_IMAGE (services are containers of that image) with PGB_TOOLS (host|image, default image).
# PGB_SSH_PORT and PGB_SSH_USER (the pull's sshd on 127.0.0.1), PGB_DEVS_YAML (a devs: section).
# and a pgb_config_monitoring function when the suite defines one (the server's monitoring: block).

# pgb_test_paths: exports the paths the config names (call after pgb_scratch_init).
pgb_test_paths() {
  export PGB_SERVER_NAME="${PGB_SERVER_NAME:-itest}"
  export PGB_BACKUP_MOUNT="${PGB_T}/backup"
  export PGB_ARTIFACTS="${PGB_BACKUP_MOUNT}/postgres"
  export PGB_BASE_DIR="${PGB_ARTIFACTS}/basebackups"
  export PGB_CONFIG_ARTIFACTS="${PGB_BACKUP_MOUNT}/config"
  export PGB_PRIMARY_REPO="${PGB_BACKUP_MOUNT}/borg"
  export PGB_EXT_MOUNT="${PGB_T}/usb"
  export PGB_EXT_REPO="${PGB_EXT_MOUNT}/borg"
  export PGB_LOCK_FILE="${PGB_T}/run/pgb.lock"
  export PGB_PASSPHRASE_FILE="${PGB_T}/secrets/pg-borg.env"
  export PGB_REPL_USER="${PGB_REPL_USER:-repl_backup}"
  export PGB_REPL_PASS_FILE="${PGB_T}/secrets/repl_password"
  export PGB_HOST_CONFIG="${PGB_T}/hostcfg"
  export PGB_KEY_DIR="${PGB_T}/keys"
  export PGB_ARCHIVE_PREFIX="${PGB_SERVER_NAME}-pg-artifacts-"
}

# pgb_write_config FILE: writes the config from the knobs above.
pgb_write_config() {
  local file="$1" spec name port
  {
    printf 'version: 1\nservers:\n'
    printf '  - name: %s\n' "${PGB_SERVER_NAME}"
    if [[ -n "${PGB_SSH_PORT:-}" ]]; then
      printf '    host: 127.0.0.1\n    ssh: { port: %s, user: %s }\n' "${PGB_SSH_PORT}" "${PGB_SSH_USER:-root}"
    fi
    printf '    paths:\n'
    printf '      backupMount: %s\n' "${PGB_BACKUP_MOUNT}"
    printf '      artifacts: %s\n' "${PGB_ARTIFACTS}"
    printf '      configArtifacts: %s\n' "${PGB_CONFIG_ARTIFACTS}"
    printf '      lockFile: %s\n' "${PGB_LOCK_FILE}"
    printf '      pgBinRoot: /usr/lib/postgresql\n'
    printf '    repos:\n'
    printf '      primary: %s\n' "${PGB_PRIMARY_REPO}"
    printf '      external:\n'
    printf '        mount: %s\n' "${PGB_EXT_MOUNT}"
    printf '        path: %s\n' "${PGB_EXT_REPO}"
    printf '        warnFreeBytes: %s\n' "${PGB_EXT_WARN_FREE:-637534208}"
    printf '        maxPruneIterations: %s\n' "${PGB_EXT_MAX_PRUNE:-25}"
    printf '        reserveBytes: %s\n' "${PGB_EXT_RESERVE:-629145600}"
    printf '    borg:\n'
    printf '      encryption: repokey-blake2\n'
    printf '      compression: "zstd,3"\n'
    printf '      passphraseFile: %s\n' "${PGB_PASSPHRASE_FILE}"
    printf '      lockWait: 30\n'
    printf '      keyExportDir: %s\n' "${PGB_KEY_DIR}"
    printf '    replication:\n'
    printf '      user: %s\n' "${PGB_REPL_USER}"
    printf '      passwordFile: %s\n' "${PGB_REPL_PASS_FILE}"
    printf '      allowedSubnet: %s\n' "${PGB_ALLOWED_SUBNET:-127.0.0.1/32}"
    printf '    retention:\n'
    printf '      rawDays: %s\n' "${PGB_RAW_DAYS:-1}"
    printf '      keepDaily: %s\n' "${PGB_KEEP_DAILY:-7}"
    printf '      keepWeekly: %s\n' "${PGB_KEEP_WEEKLY:-4}"
    printf '      keepMonthly: %s\n' "${PGB_KEEP_MONTHLY:-6}"
    printf '    parallelJobs: %s\n' "${PGB_PARALLEL_JOBS:-2}"
    printf '    services:\n'
    for spec in ${PGB_SERVICES}; do
      name="${spec%%:*}"
      port="${spec##*:}"
      if [[ -n "${PGB_DOCKER_IMAGE:-}" ]]; then
        # A container service (docker_services.bash makes NAME_pg on the volume NAME_pgdata).
        printf '      - { name: %s, host: 127.0.0.1, port: %s, pgVersion: %s, wal: %s, container: %s_pg, image: %s, dataVolume: %s_pgdata, tools: %s }\n' \
          "${name}" "${port}" "${PGB_PG_VERSION}" "${PGB_WAL:-false}" "${name}" "${PGB_DOCKER_IMAGE}" "${name}" "${PGB_TOOLS:-image}"
      else
        printf '      - { name: %s, host: 127.0.0.1, port: %s, pgVersion: %s, wal: %s }\n' \
          "${name}" "${port}" "${PGB_PG_VERSION}" "${PGB_WAL:-false}"
      fi
    done
    printf '    configPaths: [%s]\n' "${PGB_HOST_CONFIG}"
    # A suite that defines pgb_config_monitoring prints the server's monitoring: block with it.
    if declare -F pgb_config_monitoring >/dev/null; then
      pgb_config_monitoring
    fi
    # PGB_DEVS_YAML: a devs: section (a dev machine pulling from this server), @PGB_T@ the scratch root.
    if [[ -n "${PGB_DEVS_YAML:-}" ]]; then
      printf '%s\n' "${PGB_DEVS_YAML//@PGB_T@/${PGB_T}}"
    fi
  } >"${file}"
}

# pgb_repl_secret_init: the replication password file, root 0600.
pgb_repl_secret_init() {
  mkdir -p "$(dirname "${PGB_REPL_PASS_FILE}")"
  (umask 077 && head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${PGB_REPL_PASS_FILE}" &&
    printf '\n' >>"${PGB_REPL_PASS_FILE}")
}
