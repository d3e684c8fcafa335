#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for CI (make check-slurm): Debian 12's slurm-wlm and
# munge, one node on localhost, partitions `cpu` (default) and `gpu` (the same node, no GPUs: the
# smoke preset asks for none) as profiles/slurm expects, and no accounting (no slurmdbd, as on
# clusters the README's "Slurm without accounting" paragraph is about). Daemons are started
# directly (containers have no systemd); process tracking without cgroups. Idempotent: a cluster
# already up with this configuration is left alone; otherwise the daemons are (re)started.
# Needs root (re-runs itself under sudo when it is not). Logs: /var/log/slurm/.
set -euo pipefail

if [[ $EUID -ne 0 ]]; then
	command -v sudo >/dev/null || { echo "slurm-up: needs root (or sudo)" >&2; exit 1; }
	exec sudo -E bash "$0" "$@"
fi

need=()
for cmd in slurmctld slurmd sinfo squeue scancel munged; do
	command -v "$cmd" >/dev/null || need=(slurm-wlm munge)
done
if ((${#need[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- munge: a key, then the daemon
if [[ ! -s /etc/munge/munge.key ]]; then
	install -d -o munge -g munge -m 0700 /etc/munge
	dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
	chown munge:munge /etc/munge/munge.key
	chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
	runuser -u munge -- /usr/sbin/munged
	for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
	munge -n | unmunge >/dev/null || { echo "slurm-up: munged does not answer" >&2; exit 1; }
fi

# --- slurm.conf: this host, its CPUs and memory (as slurmd measures them)
host=$(hostname -s)
node=$(slurmd -C | head -1) # NodeName=<host> CPUs=.. Boards=.. ... RealMemory=..
node=${node/#NodeName=* CPUs=/CPUs=}
conf=$(mktemp)
cat >"$conf" <<EOF
# Written by .ci/slurm-up.sh: a single-node cluster for CI, no accounting.
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no cgroups in a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
PropagateResourceLimits=NONE
# no accounting: no slurmdbd, sacct has nothing to say (the executor must use squeue)
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# finished jobs stay visible to squeue for 10 minutes (the executor's squeue status check)
MinJobAge=600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
EOF
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
changed=1
if cmp -s "$conf" /etc/slurm/slurm.conf; then changed=0; fi
install -m 0644 "$conf" /etc/slurm/slurm.conf
rm -f "$conf"

# --- daemons: restarted when the configuration changed or one is not running
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ((changed)) || ! running /run/slurmctld.pid || ! running /run/slurmd.pid; then
	for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
		if running "$pidfile"; then
			pid=$(cat "$pidfile")
			kill "$pid"
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
	done
	/usr/sbin/slurmctld -i # -i: ignore state left by an earlier configuration
	/usr/sbin/slurmd
fi

# --- wait for the node
for _ in $(seq 60); do
	state=$(sinfo -h -N -n "$host" -p cpu -o %t 2>/dev/null | head -1 || true)
	if [[ $state == idle || $state == mix || $state == alloc ]]; then
		sinfo
		exit 0
	fi
	if [[ $state == down* || $state == drain* ]]; then
		scontrol update nodename="$host" state=resume 2>/dev/null || true
	fi
	sleep 1
done
echo "slurm-up: node $host not idle after 60 s (state: ${state:-none}); see /var/log/slurm/" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
