#!/usr/bin/env bash
# Sourced: installs containerd, runc and debootstrap when missing, starts
# containerd on a private socket (root and state in a temporary
# directory), exports LEGO_CONTAINERD with the socket and stops it, by
# PID, when the sourcing script exits.

missing=()
for pkg in containerd runc debootstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

ctrd_dir="$(mktemp -d /tmp/lego-ctrd.XXXXXX)"
cat > "$ctrd_dir/config.toml" <<TOML
version = 2
root = "$ctrd_dir/root"
state = "$ctrd_dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd_dir/c.sock"
TOML
containerd --config "$ctrd_dir/config.toml" >"$ctrd_dir/containerd.log" 2>&1 &
ctrd_pid=$!
stop_containerd() {
  kill "$ctrd_pid" 2>/dev/null || true
  wait "$ctrd_pid" 2>/dev/null || true
  # Mounts of containers that a failing run left behind go first.
  grep -o " $ctrd_dir/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$ctrd_dir"
}
trap stop_containerd EXIT
for _ in $(seq 100); do
  [ -S "$ctrd_dir/c.sock" ] && break
  sleep 0.1
done
[ -S "$ctrd_dir/c.sock" ] || { cat "$ctrd_dir/containerd.log" >&2; echo "containerd did not start" >&2; exit 1; }
export LEGO_CONTAINERD="$ctrd_dir/c.sock"
