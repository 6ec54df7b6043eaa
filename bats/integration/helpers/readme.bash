# A README's command blocks are the product's documentation: tests run them as they stand,
# read from the generated README, never from a copy.

# readme_block README HEADING [N]: the Nth (default 1) ```bash block after the line HEADING
# (exact match, e.g. "## 5. Prepare each PostgreSQL container"), before the next heading of
# the same or a higher level. Fails when there is no such block.
readme_block() {
  local readme="$1" heading="$2" n="${3:-1}" out
  out="$(awk -v heading="${heading}" -v n="${n}" '
    BEGIN { level = 0; inside = 0; count = 0; found = 0 }
    $0 == heading { level = index(heading, " ") - 1; inside = 1; next }
    inside && /^#+ / && (index($0, " ") - 1) <= level && !fence { exit }
    inside && /^```bash$/ && !fence { fence = 1; count++; next }
    inside && /^```$/ && fence { fence = 0; if (count == n) exit; next }
    inside && fence && count == n { print; found = 1 }
  ' "${readme}")"
  if [[ -z "${out}" ]]; then
    printf 'no bash block %s under "%s" in %s\n' "${n}" "${heading}" "${readme}" >&2
    return 1
  fi
  printf '%s\n' "${out}"
}

# readme_run DIR README HEADING [N]: runs that block with bash -e from DIR (where an operator
# stands: the host's generated tree), as root, so `sudo` is the identity (a shell function that
# keeps the environment, DOCKER_HOST among it). Output on stdout/stderr.
readme_run() {
  local dir="$1" block
  block="$(readme_block "$2" "$3" "${4:-1}")" || return 1
  (cd "${dir}" && bash -e -o pipefail -c 'sudo() { "$@"; }; '"${block}")
}

# readme_run_installed DIR README HEADING [N]: readme_run as on a host where the tree is
# installed, in a mount namespace of its own (nothing it mounts or writes there is seen outside):
# the tree's scripts at the config's scriptsDir (/usr/local/sbin, PGB_SBIN bound there), Borg's
# state dir /var/lib/pgb-gen/borg (the README names it) being the suite's BORG_BASE_DIR, and
# /var/lib and /root (the README keeps old pg_hba.conf files in /root) overlays whose writes go to a
# tmpfs of the namespace; /var/tmp likewise (a chapter copies a dev machine's tree there). The
# docker daemon's data root stays the real one even below those (a checkout under /var/tmp): a
# restore into a container's volume must write where the container reads.
readme_run_installed() {
  local dir="$1" block
  block="$(readme_block "$2" "$3" "${4:-1}")" || return 1
  # 3>&-: a WAL receiver the block restarts must not hold bats' fd 3.
  # shellcheck disable=SC2016 # expanded by the inner bash, from its environment
  PGB_RB_DIR="${dir}" PGB_RB_BLOCK="${block}" PGB_RB_OVL="$(mktemp -d "${PGB_T}/tmp/ovl.XXXXXX")" \
    unshare --mount --propagation private bash -e -o pipefail -c '
      mount -t tmpfs tmpfs "${PGB_RB_OVL}"
      keep="${PGB_DOCKER_ROOT:-}"
      if [[ -d "${keep}" ]]; then
        mkdir -p "${PGB_RB_OVL}/keep"
        mount --bind "${keep}" "${PGB_RB_OVL}/keep"
      fi
      for d in /var/lib /root /var/tmp; do
        mkdir -p "${PGB_RB_OVL}/u${d}" "${PGB_RB_OVL}/w${d}"
        mount -t overlay overlay -o "lowerdir=${d},upperdir=${PGB_RB_OVL}/u${d},workdir=${PGB_RB_OVL}/w${d}" "${d}"
      done
      if [[ -d "${keep}" ]]; then
        mount --bind "${PGB_RB_OVL}/keep" "${keep}"
      fi
      mkdir -p /var/lib/pgb-gen/borg
      mount --bind "${BORG_BASE_DIR}" /var/lib/pgb-gen/borg
      mount --bind "${PGB_SBIN}" /usr/local/sbin
      cd "${PGB_RB_DIR}"
      sudo() { "$@"; }
      eval "${PGB_RB_BLOCK}"' 3>&-
}

# readme_devcopy README DEV: the path of the dev machine's copy in the disaster chapter 11.4
# (its `export DEVCOPY='root@DEV:PATH/'`), without the host part.
readme_devcopy() {
  sed -n "s/^export DEVCOPY='root@$2:\(.*\)'\$/\1/p" "$1"
}
