# SPDX-License-Identifier: GPL-2.0-or-later
# The Xen lab works: a PVH guest boots and runs memwriter. It stays for
# dirty.sh, which destroys it (a guest's boot here takes some 20 s); a
# scenario run without dirty.sh after it leaves it to dom0's shutdown.
. /lab/t/lib.sh
pvh_create s1 128 "memwriter -m 32 -r 2000 -p 1" || fail "xl create"
wait_until 60 'test -n "$(last_gen s1)"' || { cat "$(console_log s1)"; fail "memwriter did not start"; }
say "memwriter runs in s1 (gen $(last_gen s1))"
xl list
say PASS
