# Executable documentation: a README's ```sh blocks, run in order and as written (ARCHITECTURE.md,
# "Executable documentation"). ```bash and ```text blocks are shown to the reader only.
# A suite defines what it must substitute (runbook_substitute, a filter on each block's text) and
# how a block runs (a command taking the block's file); the helper knows nothing of either.

# runbook_extract README DIR: every ```sh block of README as DIR/NNN.sh, the heading it sits under
# as DIR/NNN.title. Prints the number of blocks.
runbook_extract() {
  local readme="$1" dir="$2"
  mkdir -p "${dir}"
  awk -v dir="${dir}" '
    /^```/ && fence == "" {
      fence = substr($0, 4)
      if (fence ~ /^sh[[:space:]]*$/) {
        n++
        file = sprintf("%s/%03d.sh", dir, n)
        printf "" >file
        print title >sprintf("%s/%03d.title", dir, n)
      }
      next
    }
    /^```[[:space:]]*$/ && fence != "" { if (fence ~ /^sh[[:space:]]*$/) close(file); fence = ""; next }
    fence ~ /^sh[[:space:]]*$/ { print >file; next }
    fence == "" && /^#+ / { title = $0 }
    END { print n + 0 }
  ' "${readme}"
}

# The packages steps on a test machine without network, as sed -E arguments for a suite's
# runbook_substitute: `sudo apt update` does nothing, `sudo apt install -y PKGS` checks that PKGS
# are installed already (`dpkg-query -W PKGS`), so a package a README forgets fails a later step.
# shellcheck disable=SC2034 # used by the suites
RUNBOOK_APT_OFFLINE=(
  -e 's/^sudo apt update$/: no network in the test: apt update/'
  -e 's/^sudo apt install -y (.*)$/dpkg-query -W \1/'
)

# The identity: a suite that needs substitutions defines its own runbook_substitute.
if ! declare -F runbook_substitute >/dev/null; then
  runbook_substitute() { cat; }
fi

# runbook_run DIR RUNNER...: runs every block of DIR in order: its text through runbook_substitute
# into NNN.run, then `RUNNER... NNN.run`. The hooks runbook_before_block and runbook_after_block
# (when the suite defines them) get NNN and the block's file. Each block's output is in NNN.log; the
# first failing block stops the run, printed with its heading, text and output. A line per block
# (heading, seconds) goes to fd 3 when it is open.
runbook_run() {
  local dir="$1" block n title rc started
  shift
  for block in "${dir}"/[0-9][0-9][0-9].sh; do
    [[ -e "${block}" ]] || { printf 'no ```sh block in %s\n' "${dir}" >&2; return 1; }
    n="$(basename "${block}" .sh)"
    title="$(cat "${dir}/${n}.title")"
    runbook_substitute <"${block}" >"${dir}/${n}.run"
    if declare -F runbook_before_block >/dev/null; then
      runbook_before_block "${n}" "${dir}/${n}.run" || { printf 'before block %s (%s): the suite'"'"'s hook failed\n' "${n}" "${title}" >&2; return 1; }
    fi
    started="${SECONDS}"
    rc=0
    "$@" "${dir}/${n}.run" >"${dir}/${n}.log" 2>&1 || rc=$?
    if (( rc != 0 )); then
      printf 'README block %s under "%s" exited %s. The block as run:\n' "${n}" "${title}" "${rc}" >&2
      sed 's/^/    /' "${dir}/${n}.run" >&2
      printf 'Its output:\n' >&2
      sed 's/^/    /' "${dir}/${n}.log" >&2
      return 1
    fi
    if { true >&3; } 2>/dev/null; then
      printf '# block %s %-45s %4s s\n' "${n}" "${title}" "$((SECONDS - started))" >&3
    fi
    if declare -F runbook_after_block >/dev/null; then
      runbook_after_block "${n}" "${dir}/${n}.run" || { printf 'after block %s (%s): the suite'"'"'s check failed; its output:\n' "${n}" "${title}" >&2; sed 's/^/    /' "${dir}/${n}.log" >&2; return 1; }
    fi
  done
}
