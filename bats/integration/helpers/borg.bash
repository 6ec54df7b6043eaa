# Real Borg repositories. The passphrase reaches borg only through the environment of the
# test's own borg calls (tborg); the generated scripts must read it from their file.

# pgb_borg_secret_init FILE: a random passphrase in FILE as BORG_PASSPHRASE=..., root 0600.
pgb_borg_secret_init() {
  local file="$1"
  PGB_BORG_PASS="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mkdir -p "$(dirname "${file}")"
  (umask 077 && printf 'BORG_PASSPHRASE=%s\n' "${PGB_BORG_PASS}" >"${file}")
  export PGB_BORG_PASS
  # Cache and security dirs of this suite only (scripts honour BORG_BASE_DIR when set).
  export BORG_BASE_DIR="${PGB_T}/borg-base"
  mkdir -p "${BORG_BASE_DIR}"
}

# tborg ARGS...: borg as the test harness runs it.
tborg() {
  BORG_PASSPHRASE="${PGB_BORG_PASS}" BORG_RELOCATED_REPO_ACCESS_IS_OK=no borg "$@"
}

# pgb_borg_repo_init REPO [RESERVE_BYTES]: borg init like pgb_repo_init.sh does, and the
# additional_free_space reserve for a small drive.
pgb_borg_repo_init() {
  local repo="$1" reserve="${2:-}"
  tborg init --encryption=repokey-blake2 --make-parent-dirs "${repo}" >/dev/null 2>&1
  if [[ -n "${reserve}" ]]; then
    tborg config "${repo}" additional_free_space "${reserve}"
  fi
}

# Archive names, oldest first (by archive time).
pgb_borg_archives() {
  tborg list --sort-by timestamp --short "$1"
}

pgb_borg_archive_count() {
  pgb_borg_archives "$1" | wc -l
}

# The reserve a local repository keeps (additional_free_space), read from its config file.
pgb_repo_reserve() {
  sed -n 's/^additional_free_space = //p' "$1/config"
}

# Bytes a repository takes on disk.
pgb_repo_bytes() {
  du -sb "$1" | cut -f1
}

