#!/usr/bin/env bash
# A real single-node Slurm cluster for crates/curate-cli/tests/slurm.rs, from Debian's packages,
# started by hand (CI has no systemd): munged as user munge, then `slurmctld -c` and
# `slurmd -c`, no accounting. Idempotent: when the daemons are alive and the node answers, with
# the config this script writes, it does nothing.
#
# Liveness is read from /proc/PID/status, never from `kill -0`: a killed daemon can linger as a
# zombie, which `kill -0` reports as alive.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm

alive() { # alive PIDFILE: the daemon named in PIDFILE runs and is not a zombie
  local pid name
  [ -s "$1" ] || return 1
  pid=$(tr -dc '0-9' <"$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
  # a stale pid file may name a reused PID: the process must be the daemon itself
  name=$(basename "$1" .pid)
  grep -q "^Name:[[:space:]]*$name\$" "/proc/$pid/status" || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}

stop() { # stop PIDFILE: end the daemon it names (one we started) and wait for it
  local pid i
  alive "$1" || { rm -f "$1"; return 0; }
  pid=$(tr -dc '0-9' <"$1")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 50); do alive "$1" || break; sleep 0.1; done
  alive "$1" && kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

diagnose() {
  echo "---- slurm diagnostics ----" >&2
  for f in /run/munge/munged.pid /run/slurmctld.pid /run/slurmd.pid; do
    if alive "$f"; then echo "$f: alive ($(cat "$f"))" >&2; else echo "$f: not running" >&2; fi
  done
  sinfo -N -l 2>&1 | sed 's/^/sinfo: /' >&2 || true
  scontrol show node 2>&1 | sed 's/^/scontrol: /' >&2 || true
  for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] && { echo "---- tail $f" >&2; tail -n 40 "$f" >&2; }
  done
  return 0
}

# 1. packages (apt work under the shared setup lock)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  exec 9>/tmp/curate-venv.lock
  flock 9
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
  flock -u 9
fi

# 2. munge: a key, its directories owned by munge, the daemon as user munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! alive /run/munge/munged.pid; then
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do alive /run/munge/munged.pid && break; sleep 0.1; done
fi
if ! munge -n | unmunge >/dev/null; then
  echo "error: munge does not work" >&2
  diagnose
  exit 1
fi

# 3. slurm.conf: the node line from `slurmd -C`, fast scheduling, no accounting
install -d -m 0755 "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
NODE=$(slurmd -C | sed -n 1p)  # sed reads it all: no SIGPIPE under pipefail
NODE_NAME=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$NODE")
if [ -z "$NODE_NAME" ]; then
  echo "error: cannot read the node line from \`slurmd -C\`: $NODE" >&2
  exit 1
fi
NEW_CONF=$(mktemp)
cat >"$NEW_CONF" <<EOF
# Written by .ci/setup.d/30-slurm.sh: a single-node test cluster, daemons started by hand.
ClusterName=curate
SlurmctldHost=$NODE_NAME(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# no cgroups, no systemd: track processes by parentage, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# no accounting: curate reads progress from its completion records
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# one CPU is one schedulable unit, so single-CPU array elements run side by side
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# schedule promptly: dependent arrays start within about a second of their dependency
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
Waittime=0
MinJobAge=300
ReturnToService=2
MaxArraySize=10001
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# the uptime field of `slurmd -C` changes every second: keep it out of the config
sed -i 's/ UpTime=[^ ]*//' "$NEW_CONF"

node_ready() {
  local state
  state=$(sinfo -h -N -n "$NODE_NAME" -o '%T' 2>/dev/null | sed -n 1p)
  case "$state" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac
}

if cmp -s "$NEW_CONF" "$CONF" && alive /run/slurmctld.pid && alive /run/slurmd.pid && node_ready; then
  rm -f "$NEW_CONF"
  echo "slurm: already running ($(sinfo -h -N -o '%N %T %c CPUs'))"
  exit 0
fi

# 4. (re)start the daemons with the new config
stop /run/slurmd.pid
stop /run/slurmctld.pid
mv "$NEW_CONF" "$CONF"
chmod 0644 "$CONF"
slurmctld -c
for _ in $(seq 100); do
  alive /run/slurmctld.pid && scontrol ping >/dev/null 2>&1 && break
  sleep 0.1
done
slurmd -c

# 5. wait until the node is idle
for _ in $(seq 120); do
  if node_ready; then
    echo "slurm: ready ($(sinfo -V); $(sinfo -h -N -o '%N %T %c CPUs'))"
    exit 0
  fi
  state=$(sinfo -h -N -n "$NODE_NAME" -o '%T' 2>/dev/null | sed -n 1p || true)
  case "$state" in
    down* | drain* | fail*) scontrol update nodename="$NODE_NAME" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
echo "error: the Slurm node $NODE_NAME did not become idle within 60 s" >&2
diagnose
exit 1
