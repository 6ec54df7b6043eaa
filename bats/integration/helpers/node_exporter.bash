# A real prometheus-node-exporter on 127.0.0.1 serving only the textfile collector of a
# directory, scraped with curl. Started for a suite, stopped by its pid.

# node_exporter_start PORT DIR: exports NODE_EXPORTER_URL.
node_exporter_start() {
  local port="$1" dir="$2"
  pgb_ensure_pkg prometheus-node-exporter prometheus-node-exporter
  prometheus-node-exporter --web.listen-address="127.0.0.1:${port}" --collector.disable-defaults \
    --collector.textfile --collector.textfile.directory="${dir}" \
    </dev/null >"${PGB_T}/logs/node_exporter.log" 2>&1 3>&- &
  pgb_started_add pid "$!"
  export NODE_EXPORTER_URL="http://127.0.0.1:${port}/metrics"
  pgb_wait_for "node exporter on 127.0.0.1:${port}" 120 node_exporter_diagnose pgb_port_open "${port}"
}

node_exporter_scrape() {
  curl -fsS -m 10 "${NODE_EXPORTER_URL}"
}

node_exporter_diagnose() {
  pgb_tail_file "${PGB_T}/logs/node_exporter.log"
}
