# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers of the scenarios that run in the Xen lab's dom0 (sourced).
say() { echo "xen-test: $*"; }
# on failure: the guests' consoles' last lines and the domains
fail() {
    say "FAIL: $*"
    for f in /var/log/xen/console/guest-*.log; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
    done
    xl list
    free -m
    # again last: the reason is what a truncated log's tail must show
    say "FAIL: $*"
    exit 1
}
# wait_until SECS COND: poll COND every 0.2 s
wait_until() {
    local end=$(( $(date +%s) + $1 ))
    while ! eval "$2"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}
# pvh_create NAME MEM_MB 'WORKLOAD ARGS' [TYPE [paused]]: a PVH (or TYPE)
# guest running WORKLOAD (built and left paused, never run, with 'paused')
pvh_create() {
    cat >/tmp/$1.cfg <<CFG
name = "$1"
type = "${4:-pvh}"
kernel = "/lab/vmlinuz"
ramdisk = "/lab/guest.cpio.gz"
extra = "console=hvc0 quiet vmckpt.run=$(echo "$3" | tr ' ' ',')"
memory = $2
vcpus = 1
cpuid = "host,rdtscp=0,avx=0"
on_crash = "preserve"
CFG
    # xenconsoled appends to a guest's log: a new guest starts a new one
    rm -f "$(console_log "$1")"
    if [ "${5:-}" = paused ]; then
        xl create -p /tmp/$1.cfg
    else
        xl create /tmp/$1.cfg
    fi
}
console_log() { echo "/var/log/xen/console/guest-$1.log"; }
last_gen() { grep -ao "memwriter: gen=[0-9]*" "$(console_log "$1")" 2>/dev/null | tail -n 1 | cut -d= -f2; }
