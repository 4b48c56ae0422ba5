# SPDX-License-Identifier: GPL-2.0-or-later
# vmckpt on the lab Slurm (source after cluster.sh and slurm.sh): the
# coordinator and agents on h1..h4 with vmckpt-slurm as the controller's
# prolog and epilog and as the coordinator's lost_command, the SPANK
# plugin in plugstack.conf, and helpers to watch jobs. For t0750 and
# bench/slurm.

IMG="$top_builddir/lab"
VS="$top_builddir/slurm/vmckpt-slurm"
# what vmckpt-slurm reads (in the batch script too: sbatch passes the
# environment on); VMCKPT_CONFIG is exported once the file exists
VCONF="$TEST_DIR/co/vmckpt.conf"
export VMCKPT_CLI="$CLI_BIN"
export VMCKPT_SLURM_LOG="$TEST_DIR/slurm/vmckpt-slurm.log"
# t0750's heat: h3 dies once its second epoch has caught heat running
# (aligned; when the first caught heat's start, the second comes an
# interval of 15 s and up to 15 s of drain and pre-copy later), and the
# rest runs after the restore. Three TCG guests on 2 cores ran 25 to 60
# iterations a second: 1000 at most before h3 died, 1800 in the worst case
HEAT_ARGS="-n 96 -i 2500"

# wrapper NAME ARGS: what slurm.conf (or lost_command) names; an installed
# vmckpt-slurm needs none (its paths are built in)
wrapper() {
    cat >"$SLURM_DIR/$1" <<W &&
#!/bin/sh
export VMCKPT_CONFIG="$VCONF" VMCKPT_CLI="$VMCKPT_CLI" SLURM_CONF="$SLURM_CONF"
export VMCKPT_SLURM_LOG="$VMCKPT_SLURM_LOG"
exec "$VS" $2 "\$@"
W
        chmod +x "$SLURM_DIR/$1"
}
vjob_field() { vmckpt jobs --json | jq -r ".[] | select(.job == \"$1\") | .$2"; }
ip_of() { echo "$1"; }
# job_over ID: the job reached an end state (not pending, running,
# completing or requeued)
job_over() {
    case "$(job_state "$1")" in
    PENDING | CONFIGURING | RUNNING | COMPLETING | REQUEUED | "") return 1 ;;
    esac
}
# wait_running SECONDS ID: the job runs (failing at once if it ended)
wait_running() {
    wait_until "$1" "test \"\$(job_state $2)\" = RUNNING || job_over $2" &&
        test "$(job_state $2)" = RUNNING
}
# vms_running JOB: the VMs of vmckpt job JOB neither stopped nor lost
vms_running() {
    vmckpt vm list --job "$1" --json |
        jq -r '.[] | select(.state != "stopped" and .state != "lost") | .vm'
}
# out_of JOB: the batch script's output
out_of() { cat "$TEST_DIR/job-$1.out" 2>/dev/null; }
# ended ID SECONDS: wait for the job's end; if it does not come, say what
# its batch script and its program in the first VM are doing
ended() {
    wait_until "$2" "job_over $1" 2 && return 0
    out_of "$1"
    echo "job $1 did not end: the batch side on its first node:"
    in_host h1 ps -eo pid,etime,args | grep -E "vmckpt-slurm|dbclient|timeout" | grep -v grep
    echo "the program's output in its first VM (198.18.1.$((1 + ($1 % 62) * 4))):"
    in_guest "198.18.1.$((1 + ($1 % 62) * 4))" "tail -n 20 /tmp/vmckpt-slurm.out; ps -eo pid,args | grep -E \"heat|orted|mpirun\"" || echo "(no answer)"
    return 1
}
# heat_job FILE SBATCH-OPTION...: a batch script running heat (HEAT_ARGS)
# across the job's VMs through vmckpt-slurm, with those #SBATCH lines
heat_job() {
    local f=$1 o
    shift
    {
        echo "#!/bin/bash"
        for o in "$@"; do echo "#SBATCH $o"; done
        echo "echo \"run \${SLURM_RESTART_COUNT:-0} on \$SLURM_JOB_NODELIST\""
        echo "exec \"$VS\" run heat $HEAT_ARGS"
    } >"$f"
}
# vm_places JOB: "VM@HOST:STATE,..." of vmckpt job JOB, sorted
vm_places() { vmckpt vm list --job "$1" --json | jq -r "[.[] | .vm + \"@\" + .host + \":\" + .state] | sort | join(\",\")"; }
# heat_here N: heat's checksum on N ranks here, no VMs (the reference)
heat_here() {
    ASAN_OPTIONS=detect_leaks=0 mpirun --allow-run-as-root --oversubscribe --mca pml ob1 \
        --mca btl self,vader -np $1 "$top_builddir/examples/mpi/heat" $HEAT_ARGS 2>/dev/null |
        grep -o "checksum=[0-9a-fA-F]*"
}

# Slurm's waits on the way back of a requeued job: the credential
# lifetime (a requeued job waits that long), the scheduling pass and the
# time an RPC to a node may take (the requeue waits on the dead node's);
# bench/slurm keeps the settings docs/performance.md gives, t0750 sets
# them shorter (cred_expire 5 is the least Slurm takes)
SLURM_CRED_EXPIRE=${SLURM_CRED_EXPIRE:-10}
SLURM_SCHED_INTERVAL=${SLURM_SCHED_INTERVAL:-5}
SLURM_MESSAGE_TIMEOUT=${SLURM_MESSAGE_TIMEOUT:-10}

# vmckpt_slurm_up: the cluster and the lab Slurm, every node idle
vmckpt_slurm_up() {
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
        mkdir -p "$SLURM_DIR" &&
        guest_cluster_up 4 "lost_command=$SLURM_DIR/node-lost" max_precopy_ms=5000 &&
        printf "%s\n" "[slurm]" "guest_net = 198.18.1.0/16" "guest_slots = 4" \
            "guest_login = dbclient -y -y -i $IMG/lab.key root@" "timeout_s = 240" >>"$VCONF" &&
        wrapper prolog prolog && wrapper epilog epilog && wrapper node-lost node-lost &&
        echo "optional $top_builddir/slurm/vmckpt.so" >"$SLURM_DIR/plugstack.conf" &&
        slurm_conf h1 h2 h3 h4 -- "PrologSlurmctld=$SLURM_DIR/prolog" \
            "EpilogSlurmctld=$SLURM_DIR/epilog" "MessageTimeout=$SLURM_MESSAGE_TIMEOUT" &&
        sed -i "s|^AuthInfo=.*|&,cred_expire=$SLURM_CRED_EXPIRE|;
            s|sched_interval=5|sched_interval=$SLURM_SCHED_INTERVAL|" "$SLURM_CONF" &&
        slurm_up h1 h2 h3 h4 &&
        sinfo
}
