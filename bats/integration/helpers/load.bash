# Loads every integration helper and the bats libraries: `load helpers/load` from a suite.
_pgb_helpers="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/common.bash"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/mounts.bash"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/pg.bash"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/borg.bash"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/config.bash"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/server.bash"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/docker.bash"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/docker_services.bash"
# shellcheck source=/dev/null # each helper is linted on its own
source "${_pgb_helpers}/readme.bash"
unset _pgb_helpers
pgb_load_bats_libs
