# SPDX-License-Identifier: GPL-2.0-or-later
# Run the scenarios named (NAME.sh of /lab/t) one after another in dom0
# (a scenario may leave a guest for the next, restore.sh after ckpt.sh);
# prints "xen-result NAME ok" or "xen-result NAME FAIL" for each; the exit
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
