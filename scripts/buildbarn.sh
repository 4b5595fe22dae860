#!/usr/bin/env bash
# Sourced: builds Buildbarn (bb_storage, bb_scheduler, bb_worker, bb_runner)
# once into a cache directory, starts a one-machine Remote Execution API v2
# cluster in a temporary directory, exports LEGO_TEST_REAPI_EXECUTOR and
# LEGO_TEST_REAPI_INSTANCE and stops the daemons, by PID, when the sourcing
# script exits.
#
# Layout: clients talk to bb_storage on one loopback TCP port. It serves
# CAS, ByteStream, AC and Capabilities itself and forwards Execution to
# bb_scheduler. Everything behind it (scheduler client and worker
# endpoints, the runner) uses unix sockets in the temporary directory, so
# only one TCP port has to be free.
#
# The scheduler ignores the platform properties of actions (static, empty
# platform key), so every action runs on the single worker whatever its
# lego.* properties say. Buildbarn's Execute does not look up the action
# cache: a client that wants cache hits calls GetActionResult first.

# Buildbarn tags no releases; the Go module proxy serves only the
# pseudo-versions other modules have pinned. This is the newest
# bb-remote-execution it serves; the bb-storage is the one its go.mod names.
bb_rex_version=v0.0.0-20250727072438-58b88e8adfbd
bb_storage_version=v0.0.0-20250724154143-89b920281969
# The remote-apis that bb-remote-execution pins predates SplitBlob and
# SpliceBlob, which bb-storage's CAS server implements (Bazel builds
# Buildbarn from the .proto files, not from this Go module).
bb_remote_apis_version=v0.0.0-20260331222004-becdd8f9ff81
bb_go_fuse_version=v2.5.1

bb_bin="${LEGO_TOOLS_DIR:-/var/cache/lego-tools}/buildbarn-${bb_rex_version#v0.0.0-}"

build_buildbarn() (
  set -eo pipefail
  local work
  work="$(mktemp -d /tmp/lego-bbbuild.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  # The proxy's checksum database answers 404 for these modules; go.sum
  # still records what the proxy served.
  export GONOSUMDB=github.com/buildbarn,github.com/bazelbuild/remote-apis
  export GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0
  go mod init lego-bbtools >/dev/null 2>&1
  # As in Buildbarn's own go.mod: newer go-fuse breaks its patches.
  go mod edit -replace go.uber.org/mock=go.uber.org/mock@v0.4.0
  go mod edit -replace "github.com/hanwen/go-fuse/v2=github.com/hanwen/go-fuse/v2@$bb_go_fuse_version"
  local rex=github.com/buildbarn/bb-remote-execution
  go get "$rex/cmd/bb_scheduler@$bb_rex_version" "$rex/cmd/bb_worker@$bb_rex_version" \
    "$rex/cmd/bb_runner@$bb_rex_version" \
    "github.com/buildbarn/bb-storage/cmd/bb_storage@$bb_storage_version" \
    "github.com/bazelbuild/remote-apis@$bb_remote_apis_version" >get.log 2>&1 ||
    { cat get.log >&2; exit 1; }
  # Buildbarn's Bazel build patches two dependencies; `go build` has to
  # as well. go-fuse: bb_worker links the FUSE code even when it uses a
  # native build directory. bytestream: bb_storage registers it on a
  # grpc.ServiceRegistrar.
  local rex_dir fuse_dir bs_dir
  rex_dir="$(go list -m -f '{{.Dir}}' "$rex")"
  fuse_dir="$(go mod download -json "github.com/hanwen/go-fuse/v2@$bb_go_fuse_version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  bs_dir="$(go list -m -f '{{.Dir}}' google.golang.org/genproto/googleapis/bytestream)"
  cp -r "$fuse_dir" go-fuse
  cp -r "$bs_dir" bytestream
  chmod -R u+w go-fuse bytestream
  for p in direntrylist-offsets-and-testability writeback-cache notify-testability; do
    (cd go-fuse && patch -s -p0 <"$rex_dir/patches/com_github_hanwen_go_fuse_v2/$p.diff")
  done
  sed -i 's/func RegisterByteStreamServer(s \*grpc.Server,/func RegisterByteStreamServer(s grpc.ServiceRegistrar,/' bytestream/bytestream.pb.go
  grep -q 'RegisterByteStreamServer(s grpc.ServiceRegistrar' bytestream/bytestream.pb.go
  go mod edit -replace github.com/hanwen/go-fuse/v2=./go-fuse \
    -replace google.golang.org/genproto/googleapis/bytestream=./bytestream
  mkdir -p "$work/out"
  go build -trimpath -o "$work/out/" "$rex/cmd/bb_scheduler" "$rex/cmd/bb_worker" \
    "$rex/cmd/bb_runner" github.com/buildbarn/bb-storage/cmd/bb_storage
  mkdir -p "$(dirname "$bb_bin")"
  rm -rf "$bb_bin.tmp$$"
  mv "$work/out" "$bb_bin.tmp$$"
  mv -T "$bb_bin.tmp$$" "$bb_bin"
)

if ! [ -x "$bb_bin/bb_storage" ] || ! [ -x "$bb_bin/bb_scheduler" ] ||
  ! [ -x "$bb_bin/bb_worker" ] || ! [ -x "$bb_bin/bb_runner" ]; then
  echo "building Buildbarn into $bb_bin (a few minutes, once)" >&2
  # In the background because `set -e` inside a function is ignored when
  # the call is itself part of a `||` list.
  build_buildbarn &
  wait $! || { echo "building Buildbarn failed" >&2; exit 1; }
fi

bb_dir="$(mktemp -d /tmp/lego-bb.XXXXXX)"
mkdir -p "$bb_dir/build" "$bb_dir/cache"

bb_pids=()
# An EXIT trap set before (containerd.sh sets one) still runs, after ours.
# `trap -p` prints "trap -- 'CMD' EXIT"; a function takes it apart
# without touching the sourcing script's positional parameters.
bb_prev_exit=""
bb_take_trap() { bb_prev_exit="${3:-}"; }
eval "bb_take_trap $(trap -p EXIT)"
# Newest first: on SIGTERM bb_worker tells the scheduler it is going away
# and retries for over a minute while the scheduler is gone, so the
# scheduler must outlive it. Whatever is not gone after 5 s is killed.
stop_buildbarn() {
  local i pid
  for ((i = ${#bb_pids[@]} - 1; i >= 0; i--)); do
    pid=${bb_pids[$i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$bb_dir"
  eval "$bb_prev_exit"
}
trap stop_buildbarn EXIT

# A TCP port nothing answers on, below Linux's ephemeral range; bb_storage
# failing to bind is caught below.
bb_port=""
for _ in $(seq 50); do
  bb_p=$((20000 + RANDOM % 12000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$bb_p") 2>/dev/null; then bb_port=$bb_p; break; fi
done
[ -n "$bb_port" ] || { echo "no free port for bb_storage" >&2; exit 1; }

# Configs are Jsonnet; plain JSON is Jsonnet. Unknown fields abort start-up.
# Blocks in memory cost only what is written; a block is also the
# largest blob the CAS can hold (128 MiB here).
cat >"$bb_dir/storage.json" <<JSON
{
  "grpcServers": [{
    "listenAddresses": ["127.0.0.1:$bb_port"],
    "authenticationPolicy": {"allow": {}}
  }],
  "maximumMessageSizeBytes": 16777216,
  "contentAddressableStorage": {
    "backend": {"local": {
      "keyLocationMapInMemory": {"entries": 1048576},
      "keyLocationMapMaximumGetAttempts": 16,
      "keyLocationMapMaximumPutAttempts": 64,
      "oldBlocks": 2, "currentBlocks": 6, "newBlocks": 1,
      "blocksInMemory": {"blockSizeBytes": 134217728}
    }},
    "getAuthorizer": {"allow": {}},
    "putAuthorizer": {"allow": {}},
    "findMissingAuthorizer": {"allow": {}}
  },
  "actionCache": {
    "backend": {"local": {
      "keyLocationMapInMemory": {"entries": 65536},
      "keyLocationMapMaximumGetAttempts": 16,
      "keyLocationMapMaximumPutAttempts": 64,
      "oldBlocks": 2, "currentBlocks": 6, "newBlocks": 1,
      "blocksInMemory": {"blockSizeBytes": 4194304}
    }},
    "getAuthorizer": {"allow": {}},
    "putAuthorizer": {"allow": {}}
  },
  "schedulers": {"": {"endpoint": {"address": "unix://$bb_dir/scheduler-client.sock"}}},
  "executeAuthorizer": {"allow": {}}
}
JSON

# The predeclared queue lets Execute wait for a worker instead of failing
# when none has synchronized yet.
cat >"$bb_dir/scheduler.json" <<JSON
{
  "clientGrpcServers": [{
    "listenPaths": ["$bb_dir/scheduler-client.sock"],
    "authenticationPolicy": {"allow": {}}
  }],
  "workerGrpcServers": [{
    "listenPaths": ["$bb_dir/scheduler-worker.sock"],
    "authenticationPolicy": {"allow": {}}
  }],
  "contentAddressableStorage": {"grpc": {"address": "127.0.0.1:$bb_port"}},
  "maximumMessageSizeBytes": 16777216,
  "executeAuthorizer": {"allow": {}},
  "modifyDrainsAuthorizer": {"allow": {}},
  "killOperationsAuthorizer": {"allow": {}},
  "synchronizeAuthorizer": {"allow": {}},
  "actionRouter": {"simple": {
    "platformKeyExtractor": {"static": {}},
    "invocationKeyExtractors": [{"correlatedInvocationsId": {}}, {"toolInvocationId": {}}],
    "initialSizeClassAnalyzer": {
      "defaultExecutionTimeout": "1800s",
      "maximumExecutionTimeout": "86400s"
    }
  }},
  "platformQueueWithNoWorkersTimeout": "900s",
  "predeclaredPlatformQueues": [{"instanceNamePrefix": "", "platform": {}, "sizeClasses": [0]}]
}
JSON

# The native build directory needs no FUSE; cache and build directories
# share a file system because inputs are hard-linked from the cache.
cat >"$bb_dir/worker.json" <<JSON
{
  "blobstore": {
    "contentAddressableStorage": {"grpc": {"address": "127.0.0.1:$bb_port"}},
    "actionCache": {"grpc": {"address": "127.0.0.1:$bb_port"}}
  },
  "maximumMessageSizeBytes": 16777216,
  "scheduler": {"address": "unix://$bb_dir/scheduler-worker.sock"},
  "buildDirectories": [{
    "native": {
      "buildDirectoryPath": "$bb_dir/build",
      "cacheDirectoryPath": "$bb_dir/cache",
      "maximumCacheFileCount": 100000,
      "maximumCacheSizeBytes": 1073741824,
      "cacheReplacementPolicy": "LEAST_RECENTLY_USED"
    },
    "runners": [{
      "endpoint": {"address": "unix://$bb_dir/runner.sock"},
      "concurrency": 2,
      "instanceNamePrefix": "",
      "platform": {},
      "workerId": {"node": "lego"}
    }]
  }],
  "filePool": {"blockDevice": {"file": {"path": "$bb_dir/filepool", "sizeBytes": 1073741824}}},
  "inputDownloadConcurrency": 8,
  "outputUploadConcurrency": 8,
  "directoryCache": {
    "maximumCount": 10000,
    "maximumSizeBytes": 16777216,
    "cacheReplacementPolicy": "LEAST_RECENTLY_USED"
  }
}
JSON

cat >"$bb_dir/runner.json" <<JSON
{
  "buildDirectoryPath": "$bb_dir/build",
  "grpcServers": [{
    "listenPaths": ["$bb_dir/runner.sock"],
    "authenticationPolicy": {"allow": {}}
  }],
  "setTmpdirEnvironmentVariable": true
}
JSON


bb_fail() {
  local f
  for f in "$bb_dir"/*.log; do echo "== $f" >&2; tail -n 20 "$f" >&2; done
  echo "Buildbarn did not start: $1" >&2
  exit 1
}

# Waits up to 10 s for a check, failing early when the daemon died.
bb_wait() {
  local pid=$1 what=$2
  shift 2
  for _ in $(seq 100); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || bb_fail "$what exited"
    sleep 0.1
  done
  bb_fail "$what not ready after 10 s"
}

"$bb_bin/bb_storage" "$bb_dir/storage.json" >"$bb_dir/storage.log" 2>&1 &
bb_pids+=($!)
bb_wait "$!" bb_storage bash -c "exec 2>/dev/null 3<>/dev/tcp/127.0.0.1/$bb_port"
"$bb_bin/bb_scheduler" "$bb_dir/scheduler.json" >"$bb_dir/scheduler.log" 2>&1 &
bb_pids+=($!)
bb_wait "$!" bb_scheduler test -S "$bb_dir/scheduler-client.sock"
"$bb_bin/bb_runner" "$bb_dir/runner.json" >"$bb_dir/runner.log" 2>&1 &
bb_pids+=($!)
bb_wait "$!" bb_runner test -S "$bb_dir/runner.sock"
"$bb_bin/bb_worker" "$bb_dir/worker.json" >"$bb_dir/worker.log" 2>&1 &
bb_pids+=($!)
# The worker keeps no socket of its own; give it a moment to fail on a
# bad config, then rely on the predeclared queue.
sleep 0.5
kill -0 "${bb_pids[3]}" 2>/dev/null || bb_fail "bb_worker exited"

export LEGO_TEST_REAPI_EXECUTOR="grpc://127.0.0.1:$bb_port"
export LEGO_TEST_REAPI_INSTANCE=""
