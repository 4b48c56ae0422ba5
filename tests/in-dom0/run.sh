# SPDX-License-Identifier: GPL-2.0-or-later
# Runs inside the Xen lab's dom0 (as /lab/t/run.sh, started by its /init
# for 'vmckpt-lab xen-run'): the scenarios named (NAME.sh of /lab/t, copied
# there from tests/in-dom0 and bench/in-dom0: smoke.sh, dirty.sh, agent.sh
# for t0700, xen-pause.sh for bench/xen-pause; lib.sh is their helpers),
# one after another. Each destroys its own guests; what a failed one left
# running is destroyed before the next. Prints "xen-result NAME begins",
# then "xen-result NAME ok" or "xen-result NAME FAIL" for each; the exit
# status is the number that failed.
failed=0
for s in "$@"; do
    echo "xen-result $s begins"
    if sh "/lab/t/$s"; then
        echo "xen-result $s ok"
    else
        echo "xen-result $s FAIL"
        failed=$((failed + 1))
        # what a failed scenario left running goes before the next
        for d in $(xl list 2>/dev/null | awk 'NR > 2 {print $1}'); do xl destroy "$d"; done
    fi
done
exit $failed
