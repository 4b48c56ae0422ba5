# SPDX-License-Identifier: GPL-2.0-or-later
# The Xen lab works: a PVH guest boots and runs memwriter.
. /lab/t/lib.sh
pvh_create s1 128 "memwriter -m 32 -r 1000 -p 1" || fail "xl create"
wait_until 60 'test -n "$(last_gen s1)"' || { cat "$(console_log s1)"; fail "memwriter did not start"; }
say "memwriter runs in s1 (gen $(last_gen s1))"
xl list
xl destroy s1 || fail "xl destroy"
say PASS
