#!/usr/bin/env bats
# The Docker test rig itself (helpers/docker.bash): a private dockerd without any bridge, and the
# offline-built PostgreSQL images keeping the official postgres image's contract, which the
# container suites rely on. Runs as root, in the suite's network namespace.
#
#   bats bats/integration/docker.bats

load 'helpers/load'

setup_file() {
  pgb_require_root
  pgb_scratch_init
  docker_start
  PGB_IMAGE_15="$(docker_image_for_major 15)"
  PGB_IMAGE_17="$(docker_image_for_major 17)"
  export PGB_IMAGE_15 PGB_IMAGE_17
  docker_service_run rig_pg15 rig_pg15_data "${PGB_IMAGE_15}" 55701
  docker_service_run rig_pg17 rig_pg17_data "${PGB_IMAGE_17}" 55702
}

teardown_file() {
  docker_stop
  pgb_teardown_all
}

@test "the private daemon has no bridge network and made no bridge interface" {
  run tdocker network ls --format '{{.Name}} {{.Driver}}'
  assert_success
  refute_output --partial bridge
  run ip -o link show type bridge
  assert_output ''
}

@test "each image runs its own major version of PostgreSQL" {
  run docker_psql rig_pg15 -c 'SHOW server_version_num'
  assert_output --regexp '^15[0-9]{4}$'
  run docker_psql rig_pg17 -c 'SHOW server_version_num'
  assert_output --regexp '^17[0-9]{4}$'
}

@test "the official contract: uid 999, PGDATA on the named volume, the socket dir exists" {
  run tdocker exec rig_pg17 sh -c 'id -u postgres; id -g postgres; printf "%s\n" "${PGDATA}"; test -d /var/run/postgresql && echo sockdir'
  assert_output $'999\n999\n/var/lib/postgresql/data\nsockdir'
  local dir
  dir="$(docker_volume_dir rig_pg17_data)"
  [[ -s "${dir}/PG_VERSION" ]]
  assert_equal "$(cat "${dir}/PG_VERSION")" 17
  assert_equal "$(stat -c '%u:%g %a' "${dir}")" '999:999 700'
}

@test "POSTGRES_PASSWORD is the superuser's password over TCP, and a wrong one is refused" {
  local pass
  pass="$(sed -n 's/^POSTGRES_PASSWORD=//p' "${PGB_T}/secrets/rig_pg17.env")"
  [[ -n "${pass}" ]]
  run tdocker exec -e PGPASSWORD="${pass}" rig_pg17 psql -X -At -h 127.0.0.1 -p 55702 -U postgres -d postgres -c 'SELECT 42'
  assert_success
  assert_output 42
  run tdocker exec -e PGPASSWORD=wrong rig_pg17 psql -X -At -h 127.0.0.1 -p 55702 -U postgres -d postgres -c 'SELECT 42'
  assert_failure
  assert_output --partial 'password authentication failed'
}

@test "initdb runs only on an empty volume: a restarted container keeps its data" {
  docker_psql rig_pg15 -c 'CREATE TABLE kept (v int)' -c 'INSERT INTO kept VALUES (7)'
  docker_service_stop rig_pg15
  docker_service_start rig_pg15 55701
  run docker_psql rig_pg15 -c 'SELECT v FROM kept'
  assert_output 7
}

@test "a fresh volume without POSTGRES_PASSWORD is refused, as the official image does" {
  tdocker volume create --label "pgb-test=${PGB_T}" rig_nopass >/dev/null
  run tdocker run --rm --label "pgb-test=${PGB_T}" --network none -v rig_nopass:/var/lib/postgresql/data "${PGB_IMAGE_17}"
  assert_failure
  assert_output --partial 'POSTGRES_PASSWORD is not set'
}
