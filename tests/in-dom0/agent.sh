# SPDX-License-Identifier: GPL-2.0-or-later
# The agent in dom0, driven by the coordinator outside this Xen host: it
# builds a PVH guest running memwriter from a VM spec (xl create), takes
# two job checkpoints to h2's store (the second incremental), loses the
# guest (xl destroy) and is killed itself; restarted, it restores the job
# from h2's store into a new domain, the guest goes on from the
# checkpointed counter and memwriter's own check passes; a third
# checkpoint of the restored guest commits. Then a domain built by hand is
# taken over with its configuration, checkpointed, lost and restored in
# place from this host's copy. The console here is the coordinator's
# admin console.
. /lab/t/lib.sh
CONF=/tmp/vmckpt.conf
V() { vmckpt -c $CONF "$@"; }
LOG=/tmp/agent.log
DOM=xa-a1
agent_pid() { cat /var/lib/vmckpt/agent.pid 2>/dev/null; }
# a host's state, from 'vmckpt hosts'
host_state() { V hosts 2>/dev/null | awk -v h="$1" '$1 == h {print $2}'; }
# EPOCH's line for VM a1 in 'vmckpt list xa': base and size
epoch_line() { V list xa | awk -v e="$1" '$1 == e && $2 == "a1"'; }
# the bytes round 0 of epoch N sent, from the agent's log
round0() {
    sed -n "s/.*checkpoint of xa\/a1 epoch $1: round 0: \([0-9]*\) bytes.*/\1/p" $LOG | tail -n 1
}

[ -s /tmp/cluster.key ] || fail "no cluster key"
wait_until 30 'ping -c1 -W1 198.18.0.1 >/dev/null 2>&1' || fail "the coordinator's host is unreachable"
# the console waits 60 s for an answer: xl create of a domain takes 15 to
# 21 s in this nested Xen under TCG
cat >$CONF <<CONF
[cluster]
key_file = /tmp/cluster.key
coordinator = 198.18.0.1:7470
timeout_ms = 60000
[agent]
name = x1
state_dir = /var/lib/vmckpt
run_dir = /run/vmckpt
xl_extra = /tmp/xl-extra.cfg
reconnect_min_ms = 100
reconnect_max_ms = 800
CONF
echo 'cpuid = "host,rdtscp=0,avx=0"' >/tmp/xl-extra.cfg
# the agent's state and store (its local copies) in memory of their own:
# dom0's root file system is small
mkdir -p /var/lib/vmckpt
mount -t tmpfs -o size=900m vmckpt /var/lib/vmckpt || fail "tmpfs"
# a sanitizer build of the agent keeps freed memory for a while: less of
# it in dom0
export ASAN_OPTIONS=quarantine_size_mb=16
vmckpt-agent -c $CONF 2>>$LOG || { cat $LOG; fail "the agent did not start"; }
wait_until 30 'test "$(host_state x1)" = up' || { cat $LOG; fail "x1 is not up"; }
V hosts

# a Xen guest through the coordinator
V vm start --hypervisor xen --host x1 --job xa --name a1 --mem 128 \
    --kernel /lab/vmlinuz --initrd /lab/guest.cpio.gz \
    --append "console=hvc0 quiet vmckpt.run=memwriter,-m,32,-r,500,-p,1,-v,5" ||
    { tail -n 20 $LOG; fail "vm start"; }
xl list
wait_until 90 'test "$(last_gen $DOM)" -gt 1000 2>/dev/null' || fail "memwriter did not start in $DOM"
# a spec for a host without a Xen back end is refused, saying so
V vm start --hypervisor xen --host h2 --job xa --name a2 --mem 128 \
    --kernel /lab/vmlinuz >/tmp/h2.out 2>&1 && fail "a Xen guest on h2 was accepted"
cat /tmp/h2.out
grep -q "no usable Xen back end" /tmp/h2.out || fail "no reason for h2's refusal"

# two job checkpoints, the second a delta
g0=$(last_gen $DOM)
V checkpoint xa --wait >/tmp/c1.out 2>&1 || { cat /tmp/c1.out; tail -n 30 $LOG; fail "checkpoint 1"; }
cat /tmp/c1.out
grep -q "epoch 1 committed" /tmp/c1.out || fail "epoch 1 not committed"
[ "$(last_gen $DOM)" -gt "$g0" ] || fail "the guest did not run during pre-copy"
# the guest writes on between the two (memwriter prints every second)
g=$(last_gen $DOM)
wait_until 60 '[ "$(last_gen $DOM)" -gt $((g + 1)) ]' || fail "the guest stopped after checkpoint 1"
V checkpoint xa --wait --streams 2 >/tmp/c2.out 2>&1 || { cat /tmp/c2.out; tail -n 30 $LOG; fail "checkpoint 2"; }
cat /tmp/c2.out
grep -q "epoch 2 committed" /tmp/c2.out || fail "epoch 2 not committed"
grep -q "checkpoint of xa/a1 epoch 2 (delta, job) to .* in 2 streams begins" $LOG ||
    fail "epoch 2 did not go in two streams"
V list xa
epoch_line 1 | awk '{exit !($4 == "x1" && $5 == "h2" && $6 == "full")}' || fail "epoch 1: not a full image on h2"
epoch_line 2 | awk '{exit !($5 == "h2" && $6 == "delta")}' || fail "epoch 2: not a delta on h2"
# a delta's first round sends what was written since the last cut (at
# most memwriter's 32 MiB and the kernel's writes), a full one all 128 MiB
b1=$(round0 1) b2=$(round0 2)
say "round 0 sent $b1 bytes in epoch 1, $b2 in epoch 2"
[ -n "$b1" ] && [ -n "$b2" ] && [ "$b2" -lt $((b1 / 2)) ] ||
    fail "epoch 2 is not incremental: round 0 sent $b2 bytes, epoch 1's $b1"
g=$(last_gen $DOM)
wait_until 60 '[ "$(last_gen $DOM)" -gt "$g" ]' || fail "the guest stopped running after the checkpoints"

# the guest and its agent die; the host's local copy goes with them
xl destroy $DOM || fail "xl destroy"
# read once the domain is gone: it may print while xl destroys it
g_dead=$(last_gen $DOM)
kill -9 "$(agent_pid)" || fail "kill the agent"
rm -rf /var/lib/vmckpt/store/*
say "guest destroyed at gen $g_dead, agent killed"
wait_until 60 'test "$(host_state x1)" = lost' || fail "x1 not seen lost"
V jobs
vmckpt-agent -c $CONF 2>>$LOG || { tail -n 20 $LOG; fail "the agent did not start again"; }
wait_until 30 'test "$(host_state x1)" = up' || fail "x1 is not up again"
grep -q "of an earlier agent is gone" $LOG || fail "the new agent did not clean up after the dead guest"

# h2 holds the image but cannot run a Xen guest: the restart says so
V restart xa >/tmp/r0.out 2>&1 && fail "restart onto h2 was accepted"
cat /tmp/r0.out
grep -q "no up xen host" /tmp/r0.out || fail "no reason for refusing h2"
# what the console log holds before the restart, in bytes: its last line
# may lack its end, and the restored guest's first one then joins it
bytes0=$(wc -c <"$(console_log $DOM)")
V restart xa --hosts x1 >/tmp/r1.out 2>&1 || { cat /tmp/r1.out; tail -n 30 $LOG; fail "restart"; }
cat /tmp/r1.out
grep -q "restored from epoch 2 (h2's store)" $LOG || fail "not restored from h2's store"
xl list
# after the restore: memwriter goes on from the checkpoint and verifies
after() { tail -c +$((bytes0 + 1)) "$(console_log $DOM)"; }
wait_until 90 'after | grep -aq "memwriter: verify"' || fail "memwriter did not verify after the restore"
after | tail -n 6
after | grep -aq "memwriter: verify PASS" || fail "memwriter's verification failed"
# the first counter the restored guest printed: its verification's, which
# comes before its first progress line
g=$(after | grep -ao "memwriter: \(verify [A-Z]* \)\?gen=[0-9]*" | head -n 1 | cut -d= -f2)
# (memwriter writes a few pages between its resume and the verification,
# and the console log may not yet hold the last line before the death:
# 0.1 s of writes of slack, far below a guest not rolled back)
[ -n "$g" ] && [ "$g" -le $((g_dead + 100)) ] || fail "after the restore memwriter is at gen $g, it died at $g_dead"
say "restored guest resumed at gen $g (died at $g_dead)"

# the restored guest is checkpointed again (tracking restarted, same pages)
V checkpoint xa --wait >/tmp/c3.out 2>&1 || { cat /tmp/c3.out; tail -n 30 $LOG; fail "checkpoint 3"; }
cat /tmp/c3.out
grep -q "epoch 3 committed" /tmp/c3.out || fail "epoch 3 not committed"


V vm stop --job xa --name a1 || fail "vm stop"
xl list >/dev/null || fail "xl no longer runs in dom0"
xl domid $DOM >/dev/null 2>&1 && fail "the domain outlived vm stop"

# (in this nested lab, building a domain while another one that has been
# suspended and resumed runs, by xl save -c as much as by our cut, leaves
# dom0 damaged: docs/xen.md; so b1 comes after a1 is gone)
# a domain built by the administrator, taken over with its configuration;
# it dies and comes back in place from this host's copy, built from that
# configuration
pvh_create b1 128 "memwriter -m 16 -r 300 -p 1 -v 5" || fail "xl create b1"
wait_until 90 'test "$(last_gen b1)" -gt 500 2>/dev/null' || fail "memwriter did not start in b1"
V vm start --hypervisor xen --host x1 --job xb --name b1 --mem 128 \
    --adopt b1 --xl-config /tmp/b1.cfg || { tail -n 20 $LOG; fail "taking over b1"; }
V checkpoint xb --wait >/tmp/b1.out 2>&1 || { cat /tmp/b1.out; tail -n 30 $LOG; fail "checkpoint of b1"; }
cat /tmp/b1.out
grep -q "epoch 1 committed" /tmp/b1.out || fail "b1's epoch 1 not committed"
# memwriter prints its counter every second: one more line, past the cut
g=$(last_gen b1)
wait_until 60 '[ "$(last_gen b1)" -gt "$g" ]' || fail "b1 stopped after its checkpoint"
xl destroy b1 || fail "xl destroy b1"
b_dead=$(last_gen b1)
wait_until 10 'grep -q "xb/b1: its domain b1 is gone" $LOG' || fail "the agent did not notice b1's end"
b_bytes=$(wc -c <"$(console_log b1)")
V restart xb >/tmp/rb.out 2>&1 || { cat /tmp/rb.out; tail -n 30 $LOG; fail "restart of xb"; }
cat /tmp/rb.out
grep -q "guest xb/b1 restored from epoch 1 (x1's store)" $LOG || fail "b1 not restored from this host's copy"
grep -q "domain b1 for xb/b1 starts (restored)" /run/vmckpt/xb-b1.log &&
    grep -q "Parsing config from /tmp/b1.cfg" /run/vmckpt/xb-b1.log ||
    fail "b1 was not rebuilt from /tmp/b1.cfg"
b_after() { tail -c +$((b_bytes + 1)) "$(console_log b1)"; }
wait_until 90 'b_after | grep -aq "memwriter: verify"' || fail "b1's memwriter did not verify after the restore"
b_after | grep -aq "memwriter: verify PASS" || fail "b1's verification failed"
g=$(b_after | grep -ao "memwriter: \(verify [A-Z]* \)\?gen=[0-9]*" | head -n 1 | cut -d= -f2)
# (0.1 s of writes of slack, as for the first guest)
[ -n "$g" ] && [ "$g" -le $((b_dead + 30)) ] || fail "b1 restored at gen $g, it died at $b_dead"
say "b1 taken over, restored from its configuration at gen $g (died at $b_dead)"
V vm stop --job xb --name b1 || fail "vm stop b1"
xl list >/dev/null || fail "xl no longer runs in dom0"
if dmesg | grep -a "traps:"; then
    fail "dom0's processes crashed"
fi
pid=$(agent_pid)
kill "$pid"
wait_until 20 "! kill -0 $pid 2>/dev/null" || fail "the agent did not stop"

if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" $LOG; then
    cat $LOG
    fail "a sanitizer report in the agent's log"
fi
say PASS
