# SPDX-License-Identifier: GPL-2.0-or-later
# A Slurm cluster inside the lab (source after cluster.sh): one munged and
# slurmctld in the coordinator's namespace, one slurmd per lab host in its
# own namespace (slurmd -N hN), every file under $TEST_DIR/slurm (sockets
# under the short run directory). The lab's teardown kills them with the
# namespaces. Commands (sbatch, scontrol, squeue) find the configuration
# through SLURM_CONF.

SLURM_DIR="$TEST_DIR/slurm"
# slurmd's spool holds slurmstepd's UNIX sockets: in the short run
# directory, whatever the depth of the build tree
SLURM_SPOOL="$RUN_BASE/slurm-spool"
MUNGE_SOCK="$RUN_BASE/munge.sock"
export SLURM_CONF="$SLURM_DIR/slurm.conf"

# slurm_installed: the daemons and commands the lab Slurm needs are here
slurm_installed() {
    local p
    for p in munged slurmctld slurmd sbatch scontrol squeue; do
        command -v "$p" >/dev/null || PATH=$PATH:/usr/sbin command -v "$p" >/dev/null ||
            { echo "$p"; return 1; }
    done
}

# slurm_conf HOST... [-- LINE...]: slurm.conf for nodes HOST... (one CPU
# each, so a node runs one job), with the extra LINEs (Prolog=, ...)
slurm_conf() {
    local nodes="" h extra=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do nodes="$nodes $1"; shift; done
    [ $# -gt 0 ] && shift && extra=("$@")
    mkdir -p "$SLURM_DIR/ctld" "$SLURM_SPOOL" || return 1
    {
        cat <<CONF
ClusterName=lab
SlurmctldHost=$(hostname)(198.18.0.1)
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$SLURM_DIR/ctld
SlurmdSpoolDir=$SLURM_SPOOL/%n
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd-%n.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/linear
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_interval=5
PrologFlags=Alloc
JobRequeue=1
ReturnToService=2
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
MinJobAge=600
MailProg=/bin/true
PlugStackConfig=$SLURM_DIR/plugstack.conf
CONF
        for l in "${extra[@]}"; do echo "$l"; done
        for h in $nodes; do
            echo "NodeName=$h NodeAddr=$("$LAB_CMD" ip "$h") CPUs=1 State=UNKNOWN"
        done
        echo "PartitionName=lab Nodes=$(echo $nodes | tr ' ' ,) Default=YES MaxTime=INFINITE State=UP"
    } >"$SLURM_CONF" &&
        cgroup_conf >"$SLURM_DIR/cgroup.conf" &&
        { [ -e "$SLURM_DIR/plugstack.conf" ] || : >"$SLURM_DIR/plugstack.conf"; }
}

# slurm_up HOST...: munged and slurmctld in co, slurmd in each HOST, and
# every node idle
slurm_up() {
    local h
    mkdir -p "$SLURM_DIR/munge" && chmod 700 "$SLURM_DIR/munge" &&
        dd if=/dev/urandom of="$SLURM_DIR/munge/munge.key" bs=1024 count=1 2>/dev/null &&
        chmod 400 "$SLURM_DIR/munge/munge.key" || return 1
    in_host co munged --force --socket="$MUNGE_SOCK" \
        --key-file="$SLURM_DIR/munge/munge.key" \
        --pid-file="$SLURM_DIR/munge/munged.pid" \
        --log-file="$SLURM_DIR/munge/munged.log" \
        --seed-file="$SLURM_DIR/munge/munged.seed" || return 1
    in_host co slurmctld -i || { tail -n 20 "$SLURM_DIR/slurmctld.log"; return 1; }
    mkdir -p $(printf "$SLURM_SPOOL/%s " "$@") || return 1
    for h in "$@"; do
        slurm_start_node "$h" || return 1
    done
    for h in "$@"; do
        wait_until 30 "test \"\$(node_state $h)\" = IDLE" ||
            { scontrol show node "$h"; tail -n 20 "$SLURM_DIR/slurmd-$h.log"; return 1; }
    done
}

# slurm_start_node HOST: its slurmd (again, after it was killed)
slurm_start_node() {
    in_host "$1" slurmd -N "$1" ||
        { tail -n 20 "$SLURM_DIR/slurmd-$1.log"; return 1; }
}

# node_state HOST: IDLE, ALLOCATED, DOWN, DRAIN, ... (flags cut off)
node_state() {
    scontrol show node "$1" 2>/dev/null | sed -n 's/.*State=\([A-Z_]*\).*/\1/p' | head -n 1
}

# job_state ID: PENDING, RUNNING, COMPLETED, ...; job_value ID KEY: one
# field of 'scontrol show job' (Restarts, Reason, NodeList, ...)
job_state() { job_value "$1" JobState; }
job_value() {
    scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# cgroup_conf: slurmd loads a cgroup plugin even with proctrack/pgid and
# task/none; its own detection fails on a hybrid layout (v1 controllers
# under a tmpfs), so name v1 there; a unified v2 mount is detected alone
cgroup_conf() {
    echo "IgnoreSystemd=yes"
    if [ ! -e /sys/fs/cgroup/cgroup.controllers ] && [ -d /sys/fs/cgroup/freezer ]; then
        echo "CgroupPlugin=cgroup/v1"
    fi
}

# The commands run where slurmctld is reachable: in the coordinator's
# namespace (the machine's own namespace has no route to the fabric)
sbatch() { in_host co sbatch "$@"; }
scontrol() { in_host co scontrol "$@"; }
squeue() { in_host co squeue "$@"; }
sinfo() { in_host co sinfo "$@"; }
scancel() { in_host co scancel "$@"; }
