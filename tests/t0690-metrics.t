#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Metrics (docs/metrics.md): the coordinator serves none by default; with
# metrics_listen it and the agents answer GET /metrics, in the Prometheus
# text or OpenMetrics as asked, with numbers that agree with the catalog
# (epochs, bytes, pauses, host states; counted again from the catalog
# after a restart of the coordinator) and with df of the store; bad
# requests get 404, 405 or 400, and an idle client neither blocks a
# scrape nor keeps its connection. One guest, three job epochs.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
command -v curl >/dev/null || skip_all "curl not installed"
command -v socat >/dev/null || skip_all "socat not installed"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
GUEST_JOB=jm
ip_of() { echo 198.18.1.40; }
host_ip() { echo "198.18.0.$((10 + ${1#h}))"; }
CO_URL="http://$CO_IP:9470/metrics"
url_of() { if [ "$1" = co ]; then echo "$CO_URL"; else echo "http://$(host_ip $1):9471/metrics"; fi; }

# scrape WHO: the metrics of co or hN into $TEST_DIR/WHO.prom (from co's
# namespace, as a scraper on the fabric would)
scrape() { in_host co curl -sf --max-time 5 "$(url_of $1)" >"$TEST_DIR/$1.prom"; }
# m WHO SERIES: the value of one series of the last scrape of WHO
m() { awk -v k="$2" '$1 == k { print $2 }' "$TEST_DIR/$1.prom"; }
# status WHO CURL-ARGS...: the HTTP status curl gets
status() { local w=$1; shift; in_host co curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@" "$(url_of $w)"; }
# raw WHO: send stdin as it is, print the first line of the answer
raw() {
    local u=$(url_of $1) a
    a=${u#http://}; a=${a%/metrics}
    in_host co socat -t 3 - "TCP:$a" | head -n 1 | tr -d '\r'
}
# ep JQ-FILTER: over the job's epoch rows that were committed
ep() {
    vmckpt list jm --all --json |
        jq "[.[] | select(.state == \"committed\" or .state == \"expired\")] | $1"
}
# store_epochs HOST: epochs in the manifest of g1 in HOST's store
store_epochs() { grep -c ^epoch "$TEST_DIR/$1/state/store/jm/g1/manifest" 2>/dev/null; }
# free_as_df: h2's store free space, scraped, is what df says within 8 MiB
# (other writers on this file system move it a little between the two)
free_as_df() {
    local f d
    scrape h2 && f=$(df -B1 --output=avail "$TEST_DIR/h2/state/store" | tail -n 1 | tr -d " ") ||
        return 1
    d=$(($(m h2 vmckpt_agent_store_free_bytes) - f))
    echo "free: scraped $(m h2 vmckpt_agent_store_free_bytes), df $f"
    test "$(m h2 vmckpt_agent_store_free_bytes)" -gt 0 && test "${d#-}" -le $((8 << 20))
}
# near_us SECONDS MICROSECONDS: the same time within a microsecond
near_us() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b / 1e6; if (d < 0) d = -d; exit !(d <= 1e-6) }'; }

test_expect_success 'setup: two hosts whose agents serve metrics; the coordinator serves none by default' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    cluster_up 2 &&
    sed -i "/^\[coordinator\]/a max_precopy_ms = 15000\ncheckpoint_timeout_ms = 60000" \
        $TEST_DIR/co/vmckpt.conf &&
    for h in h1 h2; do
        echo "metrics_listen = $(host_ip $h):9471" >>$TEST_DIR/$h/vmckpt.conf || exit 1
    done &&
    agents_for_guests h1 h2 &&
    start_coordinator && start_agent h1 && start_agent h2 &&
    wait_until 10 "hosts_up h1 h2" &&
    rc=0 && in_host co curl -s --max-time 5 "$CO_URL" >/dev/null || rc=$? &&
    echo "curl exit $rc" && test "$rc" = 7 &&
    ! grep -q "metrics on" $TEST_DIR/co/coordinator.log &&
    grep_log $TEST_DIR/h1/agent.log "metrics on http://$(host_ip h1):9471/metrics"
'

test_expect_success 'a metrics_listen without a port or with a bad one is refused at start, the key named' '
    ! in_host co "$COORD_BIN" -c $TEST_DIR/co/vmckpt.conf -f \
        -o coordinator.metrics_listen=$CO_IP 2>$TEST_DIR/bad1 &&
    cat $TEST_DIR/bad1 && grep -q "\[coordinator\] metrics_listen = $CO_IP: give HOST:PORT" $TEST_DIR/bad1 &&
    ! in_host h1 "$AGENT_BIN" -c $TEST_DIR/h1/vmckpt.conf -f \
        -o agent.metrics_listen=h1:99999 2>$TEST_DIR/bad2 &&
    cat $TEST_DIR/bad2 && grep -q "\[agent\] metrics_listen = h1:99999.*bad port" $TEST_DIR/bad2 &&
    test "$(host_state h1)" = up
'

test_expect_success 'a guest on h1 running memwriter; two job epochs committed' '
    vmckpt vm start --job jm --name g1 --host h1 --mem 256 --kernel "$IMG/vmlinux" \
        --initrd "$IMG/initrd.img" --ip $(ip_of g1)/16 \
        --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" &&
    wait_until 90 "test -n \"\$(gen_now g1 h1)\"" &&
    for e in 1 2; do
        vmckpt checkpoint jm --wait >$TEST_DIR/c$e.out && cat $TEST_DIR/c$e.out &&
        grep -q "job jm: epoch $e committed: 1 VM(s)" $TEST_DIR/c$e.out || exit 1
    done
'

test_expect_success 'the coordinator restarted with metrics_listen: its counters come from the catalog' '
    stop_daemon co &&
    sed -i "/^\[coordinator\]/a metrics_listen = $CO_IP:9470" $TEST_DIR/co/vmckpt.conf &&
    start_coordinator &&
    wait_until 20 "hosts_up h1 h2" &&
    wait_until 20 "test \"\$(vm_field g1 state)\" = running" &&
    scrape co && grep -v "^#" $TEST_DIR/co.prom | grep -v _bucket &&
    test "$(m co "vmckpt_job_epochs_total{state=\"committed\"}")" = "$(ep "map(.epoch) | unique | length")" &&
    test "$(m co "vmckpt_job_epochs_total{state=\"committed\"}")" = 2 &&
    test "$(m co "vmckpt_vm_epochs_total{state=\"committed\"}")" = "$(ep length)" &&
    test "$(m co vmckpt_checkpoint_stored_bytes_total)" = "$(ep "map(.disk_bytes) | add")" &&
    test "$(m co vmckpt_vm_pause_seconds_count)" = "$(ep length)" &&
    near_us "$(m co vmckpt_vm_pause_seconds_sum)" "$(ep "map(.pause_us) | add")" &&
    for s in up lost down unknown; do
        n=$(vmckpt hosts --json | jq "[.hosts[] | select(.state == \"$s\")] | length") &&
        echo "$s: $n" && test "$(m co "vmckpt_hosts{state=\"$s\"}")" = "$n" || exit 1
    done &&
    test "$(m co "vmckpt_hosts{state=\"up\"}")" = 2 &&
    test "$(m co vmckpt_job_pause_window_seconds_count)" = 2 &&
    test "$(m co "vmckpt_job_last_epoch{job=\"jm\"}")" = 2 &&
    test "$(m co "vmckpt_jobs{state=\"running\"}")" = 1 &&
    test "$(m co "vmckpt_vms{state=\"running\"}")" = 1
'

test_expect_success 'a third epoch after the restart is counted on top; OpenMetrics when asked for' '
    vmckpt checkpoint jm --wait >$TEST_DIR/c3.out && cat $TEST_DIR/c3.out &&
    grep -q "job jm: epoch 3 committed: 1 VM(s)" $TEST_DIR/c3.out &&
    scrape co &&
    test "$(m co "vmckpt_job_epochs_total{state=\"committed\"}")" = 3 &&
    test "$(ep length)" = 3 && ep "map(.state)" | grep -q expired &&
    test "$(m co "vmckpt_vm_epochs_total{state=\"committed\"}")" = 3 &&
    test "$(m co vmckpt_checkpoint_stored_bytes_total)" = "$(ep "map(.disk_bytes) | add")" &&
    test "$(m co vmckpt_vm_pause_seconds_count)" = 3 &&
    test "$(m co "vmckpt_vm_pause_seconds_bucket{le=\"+Inf\"}")" = 3 &&
    near_us "$(m co vmckpt_vm_pause_seconds_sum)" "$(ep "map(.pause_us) | add")" &&
    test "$(m co "vmckpt_job_epochs_total{state=\"aborted\"}")" = 0 &&
    in_host co curl -sf -D $TEST_DIR/h.txt -o $TEST_DIR/co.prom "$CO_URL" &&
    grep -qi "^Content-Type: text/plain; version=0.0.4; charset=utf-8" $TEST_DIR/h.txt &&
    ! grep -q "^# EOF" $TEST_DIR/co.prom &&
    grep -q "^# TYPE vmckpt_job_epochs_total counter" $TEST_DIR/co.prom &&
    in_host co curl -sf -D $TEST_DIR/h.txt -o $TEST_DIR/co.om \
        -H "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5" "$CO_URL" &&
    grep -qi "^Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8" $TEST_DIR/h.txt &&
    test "$(tail -n 1 $TEST_DIR/co.om)" = "# EOF" &&
    grep -q "^# TYPE vmckpt_job_epochs counter" $TEST_DIR/co.om &&
    grep -q "^# UNIT vmckpt_vm_pause_seconds seconds" $TEST_DIR/co.om &&
    grep -q "^vmckpt_job_epochs_total{state=\"committed\"} 3$" $TEST_DIR/co.om
'

test_expect_success 'the agents: pauses, bytes and guests agree with the catalog; free space with df' '
    scrape h1 && scrape h2 && grep -v "^#" $TEST_DIR/h1.prom | grep -v _bucket &&
    rows="select(.vm == \"g1\" and .host == \"h1\")" &&
    all=$(vmckpt list jm --all --json) &&
    n=$(echo "$all" | jq "[.[] | $rows | select(.state != \"aborted\")] | length") &&
    us=$(echo "$all" | jq "[.[] | $rows | select(.state != \"aborted\") | .pause_us] | add") &&
    test "$n" = 3 &&
    test "$(m h1 vmckpt_agent_pause_seconds_count)" = "$n" &&
    test "$(m h1 "vmckpt_agent_checkpoints_total{result=\"durable\"}")" = "$n" &&
    near_us "$(m h1 vmckpt_agent_pause_seconds_sum)" "$us" &&
    test "$(m h1 vmckpt_agent_vms)" = 1 && test "$(m h2 vmckpt_agent_vms)" = 0 &&
    test "$(m h1 vmckpt_agent_registered)" = 1 &&
    stored=$(echo "$all" | jq "[.[] | select(.store_host == \"h2\" and .state != \"aborted\") | .disk_bytes] | add") &&
    test "$(m h2 vmckpt_agent_store_written_bytes_total)" = "$stored" &&
    test "$(m h1 vmckpt_agent_store_written_bytes_total)" -gt 0 &&
    wait_until 30 "test \"\$(store_epochs h2)\" = 2" &&
    wait_until 20 free_as_df
'

test_expect_success 'bad requests: 404, 405, 400, 505; an idle client blocks nothing and is closed' '
    test "$(status co)" = 200 && test "$(status h2 -I)" = 200 &&
    test "$(status co -X POST)" = 405 &&
    test "$(status h1 -X DELETE)" = 405 &&
    in_host co curl -s -o /dev/null -w "%{http_code}" "http://$CO_IP:9470/nope" | grep -qx 404 &&
    test "$(printf "GARBAGE\r\n\r\n" | raw co)" = "HTTP/1.1 400 Bad Request" &&
    test "$(printf "GET /metrics HTTP/1.1\r\n\r\n" | raw h1)" = "HTTP/1.1 400 Bad Request" &&
    test "$(printf "GET /metrics HTTP/3.0\r\n\r\n" | raw co)" = "HTTP/1.1 505 HTTP Version Not Supported" &&
    { timeout 60 "$LAB_CMD" exec "$LAB" co socat -u TCP:$CO_IP:9470 - >/dev/null 2>&1 & } &&
    wait_until 5 "in_host co ss -tn state established \"( sport = :9470 )\" | grep -q $CO_IP" &&
    scrape co && test "$(m co "vmckpt_hosts{state=\"up\"}")" = 2 &&
    wait_until 20 "! in_host co ss -tn state established \"( sport = :9470 )\" | grep -q $CO_IP"
'

test_expect_success 'clean stop; no sanitizer report' '
    vmckpt vm stop --job jm --name g1 | grep -q stopped &&
    stop_daemon h1 && stop_daemon h2 && stop_daemon co &&
    no_sanitizer_reports
'
test_done
