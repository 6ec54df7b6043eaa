#!/usr/bin/env bash
# Prints the `systemd-analyze security --offline=yes` exposure score of every generated service
# unit (template units included) and fails when one scores above the limit (default 1.5).
# Usage: scripts/exposure.sh [--max N] [DIR]     DIR: a generated/ tree (default: the repo's)
set -euo pipefail
export LC_ALL=C

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly DEFAULT_MAX=1.5

die() {
  printf 'exposure.sh: %s\n' "$*" >&2
  exit 2
}

usage() {
  printf 'usage: %s [--max N] [GENERATED_DIR]\n' "${0##*/}" >&2
  exit 2
}

# The score of one unit file, e.g. "1.3"; empty when systemd-analyze cannot rate it.
unit_score() {
  local unit="$1" out
  out="$(systemd-analyze security --offline=yes --no-pager -- "${unit}" 2>&1)" || true
  sed -n 's/^.*Overall exposure level for .*: \([0-9][0-9]*\.[0-9]\) .*$/\1/p' <<<"${out}" | tail -n 1
}

# Scores as integers in tenths, so bash compares them exactly.
tenths() {
  local score="$1"
  printf '%d' "$((10#${score%.*} * 10 + 10#${score#*.}))"
}

main() {
  local max="${DEFAULT_MAX}" dir="${REPO_ROOT}/generated" unit host score worst=0 count=0 failed=0
  while (( $# )); do
    case "$1" in
      --max)
        (( $# >= 2 )) || usage
        max="$2"
        shift
        ;;
      -h | --help) usage ;;
      -*) usage ;;
      *) dir="$1" ;;
    esac
    shift
  done
  [[ "${max}" =~ ^[0-9]+\.[0-9]$ ]] || die "--max wants a score like 1.5, got ${max}"
  [[ -d "${dir}" ]] || die "no such directory: ${dir}"
  command -v systemd-analyze >/dev/null || die "systemd-analyze not found (apt-get install systemd)"
  dir="$(cd "${dir}" && pwd)"

  printf '%-20s %-36s %s\n' HOST UNIT EXPOSURE
  while IFS= read -r -d '' unit; do
    host="${unit#"${dir}/"}"
    host="${host%%/*}"
    score="$(unit_score "${unit}")"
    count=$((count + 1))
    if [[ -z "${score}" ]]; then
      printf '%-20s %-36s %s\n' "${host}" "${unit##*/}" "NOT RATED"
      systemd-analyze security --offline=yes --no-pager -- "${unit}" 2>&1 | tail -n 5 >&2 || true
      failed=$((failed + 1))
      continue
    fi
    if (( $(tenths "${score}") > $(tenths "${max}") )); then
      printf '%-20s %-36s %s  ABOVE %s\n' "${host}" "${unit##*/}" "${score}" "${max}"
      failed=$((failed + 1))
    else
      printf '%-20s %-36s %s\n' "${host}" "${unit##*/}" "${score}"
    fi
    if (( $(tenths "${score}") > worst )); then
      worst="$(tenths "${score}")"
    fi
  done < <(find "${dir}" -path '*/root/etc/systemd/system/*' -name '*.service' -type f -print0 | sort -z)

  (( count > 0 )) || die "no generated service unit under ${dir}"
  printf '%d unit(s), worst %d.%d, limit %s: ' "${count}" "$((worst / 10))" "$((worst % 10))" "${max}"
  if (( failed > 0 )); then
    printf '%d FAILED\n' "${failed}"
    exit 1
  fi
  printf 'ok\n'
}

main "$@"
