# A real Docker engine for the integration suites (Debian's docker.io), started by pid:
# - a PRIVATE dockerd: its own data root, exec root, pidfile, socket and daemon config (no bridge,
#   no iptables, no forwarding), so it never meets another dockerd on the machine and never makes
#   a network; containers run with --network host (in the suite's network namespace) or none;
# - PostgreSQL images built offline from Debian's packages with mmdebstrap, with an entrypoint
#   that follows the official postgres image's contract, built once per recipe hash and reused;
# - service containers on 127.0.0.1 ports, labelled with the suite's scratch root so teardown
#   removes exactly the containers and volumes the suite made.
#
# Knobs: PGB_DOCKER_ROOT (the daemon's data root: images and volumes survive runs; default
# <repo>/.tmp/docker, git-ignored), PGB_IMAGE_CACHE (the rootfs tars, default
# /var/cache/pgb-gen-test/images), PGB_DEBIAN_MIRROR (default http://deb.debian.org/debian).

PGB_DOCKER_ROOT="${PGB_DOCKER_ROOT:-${PGB_REPO_ROOT}/.tmp/docker}"
PGB_IMAGE_CACHE="${PGB_IMAGE_CACHE:-/var/cache/pgb-gen-test/images}"
PGB_DEBIAN_MIRROR="${PGB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export PGB_DOCKER_ROOT PGB_IMAGE_CACHE PGB_DEBIAN_MIRROR

# The daemon config FIELD-NOTES measured: no docker0 bridge, no iptables rules, no forwarding.
readonly PGB_DOCKERD_CONFIG='{"bridge":"none","iptables":false,"ip6tables":false,"ip-forward":false,"ip-masq":false}'

# Where Debian puts the server binaries of each major version in the images.
readonly PGB_IMAGE_PATH_TAIL='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# The test's own docker client, talking to the private daemon only.
tdocker() {
  docker -H "${DOCKER_HOST}" "$@"
}

docker_diagnose() {
  pgb_tail_file "${PGB_T}/logs/dockerd.log" 30
}

# The container named in PGB_DIAG_CONTAINER: its state and its log's tail.
docker_container_diagnose() {
  tdocker ps -a --filter "name=^${PGB_DIAG_CONTAINER}\$" || true
  tdocker logs --tail 30 "${PGB_DIAG_CONTAINER}" 2>&1 || true
}

docker_ensure_pkgs() {
  pgb_ensure_pkg dockerd docker.io
  pgb_ensure_pkg mmdebstrap mmdebstrap
}

# docker_start: starts the private dockerd in the background (its exec root and socket in the
# scratch root, a short path: unix socket paths are limited to 108 bytes), waits until it
# answers, exports DOCKER_HOST for the tests and the generated scripts. One daemon per data
# root: a data root in use by a live dockerd of another suite is waited for.
docker_start() {
  docker_ensure_pkgs
  local run pidfile="${PGB_DOCKER_ROOT}/dockerd.pid" other
  mkdir -p "${PGB_DOCKER_ROOT}/data"
  if [[ -s "${pidfile}" ]]; then
    other="$(cat "${pidfile}")"
    pgb_wait_for "dockerd ${other} to release ${PGB_DOCKER_ROOT}" 600 - pgb_pid_gone "${other}" || return 1
  fi
  pgb_cgroups_mount
  run="$(mktemp -d /tmp/pgbd.XXXXXX)"
  printf '%s\n' "${PGB_DOCKERD_CONFIG}" >"${run}/daemon.json"
  PGB_DOCKERD_RUN="${run}"
  export DOCKER_HOST="unix://${run}/docker.sock"
  # 3>&-: a daemon holding bats' fd 3 would keep bats waiting forever.
  dockerd --config-file "${run}/daemon.json" --data-root "${PGB_DOCKER_ROOT}/data" \
    --exec-root "${run}/exec" --pidfile "${pidfile}" -H "${DOCKER_HOST}" \
    >"${PGB_T}/logs/dockerd.log" 2>&1 3>&- &
  PGB_DOCKERD_PID=$!
  export PGB_DOCKERD_RUN PGB_DOCKERD_PID
  # Fallback only: docker_stop stops it cleanly first.
  pgb_started_add pid "${PGB_DOCKERD_PID}"
  pgb_wait_for "dockerd to answer on ${DOCKER_HOST}" 120 docker_diagnose tdocker version || return 1
  # A bridge would mean the config was not applied: refuse to go on.
  if tdocker network ls --format '{{.Driver}}' | grep -qx bridge; then
    printf 'dockerd made a bridge network: daemon config not applied\n' >&2
    return 1
  fi
  # What a suite labelled and is still in the data root now is of a run killed before its
  # teardown (the data root serves one daemon at a time): it would hold the names this run needs.
  docker_remove_labelled pgb-test
}

# docker_remove_labelled FILTER: removes the containers (with their anonymous volumes) and the
# volumes whose labels match FILTER (docker's label=FILTER).
docker_remove_labelled() {
  local ids
  ids="$(tdocker ps -aq --filter "label=$1" 2>/dev/null || true)"
  if [[ -n "${ids}" ]]; then
    # shellcheck disable=SC2086 # one id a word
    tdocker rm -f -v ${ids} >/dev/null 2>&1 || true
  fi
  ids="$(tdocker volume ls -q --filter "label=$1" 2>/dev/null || true)"
  if [[ -n "${ids}" ]]; then
    # shellcheck disable=SC2086 # one name a word
    tdocker volume rm -f ${ids} >/dev/null 2>&1 || true
  fi
}

# docker_stop: removes the suite's containers and volumes (by label), then stops the daemon by
# its pid (SIGTERM, bounded wait) and removes its exec root. Safe to call twice.
docker_stop() {
  [[ -n "${PGB_DOCKERD_PID:-}" ]] || return 0
  if kill -0 "${PGB_DOCKERD_PID}" 2>/dev/null; then
    docker_remove_labelled "pgb-test=${PGB_T}"
    kill -TERM "${PGB_DOCKERD_PID}" 2>/dev/null || true
    pgb_wait_for "dockerd ${PGB_DOCKERD_PID} to exit" 60 docker_diagnose pgb_pid_gone "${PGB_DOCKERD_PID}" ||
      kill -KILL "${PGB_DOCKERD_PID}" 2>/dev/null || true
  fi
  wait "${PGB_DOCKERD_PID}" 2>/dev/null || true
  pgb_started_remove pid "${PGB_DOCKERD_PID}"
  if [[ -n "${PGB_DOCKERD_RUN:-}" ]]; then
    # Mounts the daemon left in its exec root (none after a clean exit) keep it.
    findmnt -rn -o TARGET | grep -qF "${PGB_DOCKERD_RUN}/" || rm -rf -- "${PGB_DOCKERD_RUN}"
  fi
  PGB_DOCKERD_PID=""
}

# ---- images ---------------------------------------------------------------------------------

# The entrypoint of the test images: the official image's contract (docker-entrypoint.sh of
# docker-library/postgres), reduced to what the product relies on. Differences: setpriv instead
# of gosu (Debian has no gosu); host connections need a password also from 127.0.0.1 (the
# official image trusts them), so tests on --network host prove the replication password.
docker_entrypoint_text() {
  cat <<'EOF'
#!/bin/bash
set -Eeo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
if [[ "${1:0:1}" == '-' ]]; then
  set -- postgres "$@"
fi
if [[ "$1" == postgres && "$(id -u)" == 0 ]]; then
  mkdir -p "${PGDATA}" /var/run/postgresql
  chown postgres:postgres "${PGDATA}" /var/run/postgresql
  chmod 0700 "${PGDATA}"
  chmod 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi
if [[ "$1" == postgres && ! -s "${PGDATA}/PG_VERSION" ]]; then
  if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
    echo 'Error: the database is uninitialized and POSTGRES_PASSWORD is not set' >&2
    exit 1
  fi
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
  initdb --username="${POSTGRES_USER:-postgres}" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD}") \
    --auth-local=trust --auth-host=scram-sha-256 -D "${PGDATA}" ${POSTGRES_INITDB_ARGS:-}
  printf 'host all all all scram-sha-256\n' >>"${PGDATA}/pg_hba.conf"
  printf "listen_addresses = '*'\n" >>"${PGDATA}/postgresql.conf"
fi
exec "$@"
EOF
}

# docker_image_recipe SUITE PGMAJOR: every input of an image, hashed into its tag.
docker_image_recipe() {
  printf 'suite=%s\npg=%s\nmirror=%s\nvariant=minbase\nuid=999\n' "$1" "$2" "${PGB_DEBIAN_MIRROR}"
  docker_entrypoint_text
}

docker_image_tag() {
  printf 'pgb-test/postgres:%s-%s' "$2" "$(docker_image_recipe "$1" "$2" | sha256sum | cut -c1-12)"
}

# docker_rootfs_build SUITE PGMAJOR: the rootfs tar in the cache (needs the Debian mirror; run it
# where the network is, e.g. before entering a network namespace). Prints the tar's path.
docker_rootfs_build() {
  local suite="$1" major="$2" tag tar tmp
  tag="$(docker_image_tag "${suite}" "${major}")"
  tar="${PGB_IMAGE_CACHE}/${tag##*:}.tar"
  if [[ ! -s "${tar}" ]]; then
    mkdir -p "${PGB_IMAGE_CACHE}"
    tmp="$(mktemp -d "${PGB_IMAGE_CACHE}/.build.XXXXXX")"
    docker_entrypoint_text >"${tmp}/docker-entrypoint.sh"
    # uid/gid 999 before PostgreSQL is installed (its postinst keeps an existing postgres user);
    # no cluster of Debian's own: the entrypoint makes PGDATA's.
    # shellcheck disable=SC2016 # mmdebstrap's hooks expand $1 (the new root), not this shell
    if ! mmdebstrap --quiet --variant=minbase --include="postgresql-${major}" \
      --essential-hook='printf "postgres:x:999:\n" >>"$1/etc/group"' \
      --essential-hook='printf "postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n" >>"$1/etc/passwd"' \
      --essential-hook='printf "postgres:*:20000:0:99999:7:::\n" >>"$1/etc/shadow"' \
      --essential-hook='mkdir -p "$1/etc/postgresql-common" && printf "create_main_cluster = false\n" >"$1/etc/postgresql-common/createcluster.conf"' \
      --customize-hook="copy-in ${tmp}/docker-entrypoint.sh /usr/local/bin" \
      --customize-hook='chmod 0755 "$1/usr/local/bin/docker-entrypoint.sh"' \
      --customize-hook='mkdir -p "$1/var/lib/postgresql/data" "$1/var/run/postgresql" && chown 999:999 "$1/var/lib/postgresql/data" "$1/var/run/postgresql"' \
      --customize-hook='rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*' \
      "${suite}" "${tmp}/rootfs.tar" "${PGB_DEBIAN_MIRROR}" >"${tmp}/mmdebstrap.log" 2>&1; then
      cat "${tmp}/mmdebstrap.log" >&2
      rm -rf -- "${tmp}"
      return 1
    fi
    mv -f "${tmp}/rootfs.tar" "${tar}"
    rm -rf -- "${tmp}"
  fi
  printf '%s\n' "${tar}"
}

# docker_image SUITE PGMAJOR: the image's tag, imported into the daemon unless it is there.
docker_image() {
  local suite="$1" major="$2" tag tar
  tag="$(docker_image_tag "${suite}" "${major}")"
  if ! tdocker image inspect "${tag}" >/dev/null 2>&1; then
    tar="$(docker_rootfs_build "${suite}" "${major}")" || return 1
    tdocker import \
      --change "ENV PATH=/usr/lib/postgresql/${major}/bin:${PGB_IMAGE_PATH_TAIL}" \
      --change 'ENV PGDATA=/var/lib/postgresql/data' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'VOLUME /var/lib/postgresql/data' \
      --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
      --change 'CMD ["postgres"]' \
      "${tar}" "${tag}" >/dev/null
  fi
  printf '%s\n' "${tag}"
}

# The two images of the issue: PostgreSQL 15 on bookworm (the host's major) and 17 on trixie.
docker_image_for_major() {
  case "$1" in
    15) docker_image bookworm 15 ;;
    17) docker_image trixie 17 ;;
    *) printf 'no test image recipe for PostgreSQL %s\n' "$1" >&2; return 1 ;;
  esac
}

# ---- service containers -----------------------------------------------------------------------

# docker_service_run CONTAINER VOLUME IMAGE PORT [fast|durable]: a service container as an operator
# runs the official image (named volume at PGDATA, POSTGRES_PASSWORD from a file through
# --env-file, so not on argv), on --network host listening on 127.0.0.1:PORT (PGPORT too, so a
# `docker exec CONTAINER psql` finds the socket as it does at 5432 in a published container); waits
# until it accepts connections. fast (the default) is for a test machine, as pg_cluster_create's
# clusters: fsync and synchronous_commit off, 1 MiB WAL segments; durable is a production server's
# fsync, synchronous_commit and 16 MiB segments (for tests that measure when a commit reaches the
# WAL: pitr.bats's RPO test).
# initdb does not sync either way: a new cluster's files need not survive a crash of the machine.
docker_service_run() {
  local container="$1" volume="$2" image="$3" port="$4" mode="${5:-fast}" envf segsize=1 sync=off
  case "${mode}" in
    fast) ;;
    durable) segsize=16 sync=on ;;
    *) printf 'docker_service_run: mode fast or durable, not %s\n' "${mode}" >&2; return 1 ;;
  esac
  envf="${PGB_T}/secrets/${container}.env"
  mkdir -p "${PGB_T}/secrets"
  if [[ ! -s "${envf}" ]]; then
    (umask 077 && printf 'POSTGRES_PASSWORD=%s\n' "$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"${envf}")
  fi
  tdocker volume create --label "pgb-test=${PGB_T}" "${volume}" >/dev/null
  tdocker run -d --name "${container}" --label "pgb-test=${PGB_T}" --network host \
    --stop-signal SIGINT --stop-timeout 30 \
    --env-file "${envf}" -e POSTGRES_INITDB_ARGS="--wal-segsize=${segsize} --locale=C --encoding=UTF8 --no-sync" \
    -e PGPORT="${port}" \
    -v "${volume}:/var/lib/postgresql/data" "${image}" \
    postgres -c port="${port}" -c listen_addresses=127.0.0.1 -c fsync="${sync}" -c synchronous_commit="${sync}" \
    -c shared_buffers=16MB -c max_wal_senders=10 -c max_replication_slots=10 >/dev/null
  docker_service_wait_ready "${container}" "${port}"
}

# docker_service_wait_ready CONTAINER PORT: until the server in the container accepts
# connections over TCP on 127.0.0.1:PORT (as a published port would).
docker_service_wait_ready() {
  local container="$1" port="$2"
  PGB_DIAG_CONTAINER="${container}"
  pgb_wait_for "${container} to accept connections on 127.0.0.1:${port}" 180 docker_container_diagnose \
    tdocker exec -u postgres "${container}" pg_isready -q -h 127.0.0.1 -p "${port}" -d postgres
}

# docker_service_port CONTAINER: the port its postgres was started with (-c port=N).
docker_service_port() {
  tdocker inspect -f '{{range .Args}}{{println .}}{{end}}' "$1" | sed -n 's/^port=\([0-9]*\)$/\1/p'
}

# docker_psql CONTAINER [psql args...]: superuser psql in the container over its socket (the
# operator's `docker exec CONTAINER psql -U postgres`; no -i: it would eat a caller's stdin),
# unaligned, tuples only.
docker_psql() {
  local container="$1" port
  shift
  port="$(docker_service_port "${container}")"
  tdocker exec -u postgres "${container}" psql -X -q -At -v ON_ERROR_STOP=1 -p "${port}" -d postgres "$@"
}

# docker_volume_dir VOLUME: where the named volume's data lives on the host.
docker_volume_dir() {
  tdocker volume inspect -f '{{.Mountpoint}}' "$1"
}

# docker_service_stop CONTAINER / docker_service_start CONTAINER PORT.
docker_service_stop() {
  tdocker stop "$1" >/dev/null
}

docker_service_start() {
  tdocker start "$1" >/dev/null
  docker_service_wait_ready "$1" "$2"
}

# docker_table_digest CONTAINER TABLE ORDER_BY: "rows|md5 of every row in order" (pg_table_digest).
docker_table_digest() {
  pg_table_digest "$@"
}

# docker_out_of_recovery CONTAINER SOCKET_DIR: its server answers on that socket and is not in
# recovery (a state to wait on).
docker_out_of_recovery() {
  [[ "$(tdocker exec -u 999:999 "$1" psql -X -At -h "$2" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" == f ]]
}

# docker_query_datadir IMAGE DIR SQL: starts a (restored, recovered or not) data dir in a
# throwaway container of IMAGE (--network none, socket only; DIR-wal, where pgb-restore.sh stages
# the WAL of a copy left to recover, bound too), waits until it is out of recovery, prints what SQL
# returns, removes the container.
docker_query_datadir() {
  local image="$1" dir="$2" sql="$3" name out rc=0
  local -a binds=(-v "${dir}:${dir}")
  name="pgb-test-query-$$-${RANDOM}"
  chown -R 999:999 "${dir}"
  if [[ -d "${dir}-wal" ]]; then
    chown -R 999:999 "${dir}-wal"
    binds+=(-v "${dir}-wal:${dir}-wal")
  fi
  tdocker run -d --name "${name}" --label "pgb-test=${PGB_T}" --network none --user 999:999 \
    --entrypoint postgres "${binds[@]}" "${image}" -D "${dir}" -c listen_addresses= \
    -c unix_socket_directories=/tmp -c archive_mode=off >/dev/null
  PGB_DIAG_CONTAINER="${name}"
  pgb_wait_for "${dir} to be out of recovery in ${name}" 180 docker_container_diagnose \
    docker_out_of_recovery "${name}" /tmp || {
    tdocker rm -f "${name}" >/dev/null
    return 1
  }
  out="$(tdocker exec -u 999:999 "${name}" psql -X -At -v ON_ERROR_STOP=1 -h /tmp -d postgres -c "${sql}")" || rc=$?
  tdocker rm -f "${name}" >/dev/null
  printf '%s\n' "${out}"
  return "${rc}"
}
