#!/usr/bin/env bash
# Builds the real control-plane lane's programs from the Go modules pinned in go.mod (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok, the JobSet, Kueue, KubeRay and MPI operators and the local-path provisioner) and copies the
# operators' real CRDs and kwok's stages out of the same module downloads, into one assets directory:
#
#   $AIBENCH_KUBE_ASSETS (default: ${XDG_CACHE_HOME:-~/.cache}/k8s-ai-bench/local-kube)
#     bin/<program>   crds/<name>.yaml   stages/<name>.yaml   provenance.tsv   stamp
#
# Idempotent: a directory whose stamp matches go.mod/go.sum and this script is left as it is (a warm CI machine
# rebuilds nothing); Go's module and build caches stay where `go env` puts them, outside the clone.
# Every failure is one line naming the step and the cause, exit status 2.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
assets=${AIBENCH_KUBE_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-ai-bench/local-kube}
export GOFLAGS=-mod=readonly CGO_ENABLED=0
kube_version=v1.37.2

fail() { echo "local-kube build: $1" >&2; exit 2; }
step() { echo "local-kube build: $*"; }

command -v go >/dev/null || fail "step 'go': no Go toolchain on PATH (install Go 1.26 or later, or point AIBENCH_KUBE_ASSETS at prebuilt binaries)"
stamp=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -c1-16)
if [[ -f "$assets/stamp" && "$(cat "$assets/stamp")" == "$stamp" ]]; then
  step "up to date in $assets (stamp $stamp)"; exit 0
fi
mkdir -p "$assets/bin" "$assets/crds" "$assets/stages" "$assets/webhooks" "$assets/storage" || fail "step 'assets': cannot create $assets"
cd "$here"

log=$(mktemp); trap 'rm -f "$log"' EXIT
run() {  # run STEP CMD...: the command's own last error line becomes the one-line cause
  local name=$1; shift
  if ! "$@" >"$log" 2>&1; then
    local cause; cause=$(grep -v '^\s*$' "$log" | grep -iE 'error|cannot|refused|forbidden|not found|no such|unreachable|dial|timeout' | tail -1)
    [[ -n "$cause" ]] || cause=$(grep -v '^\s*$' "$log" | tail -1)
    fail "step '$name': $cause"
  fi
}

step "downloading modules (go mod download)"
run "module download" go mod download -x
# The pins nothing in this module imports (operators, CRD-only modules) are downloaded by name.
pins=$(sed -n '/^require (/,/^)/p' go.mod | awk '$2 ~ /^v/ && $3 == "//" && $4 != "indirect" {print $1}')
run "module download" go mod download -x $pins

version_flags="-X k8s.io/component-base/version.gitVersion=$kube_version -X k8s.io/component-base/version.gitMajor=1"
version_flags+=" -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"
version_flags+=" -X k8s.io/client-go/pkg/version.gitVersion=$kube_version"
# Built from this module's graph (k8s.io/kubernetes needs its staging replaces, which only a main module can give).
programs=(
  "etcd aibench.io/local-kube/etcd"
  "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler"
)
# Built as upstream releases them: inside each module's own download (go.mod and go.sum as released), at the
# version pinned in go.mod; `go install <pkg>@<version>` would do the same but needs the proxy's version list,
# which is not served for every module.
installs=(
  "kwok sigs.k8s.io/kwok cmd/kwok"
  "jobset sigs.k8s.io/jobset ."
  "kueue sigs.k8s.io/kueue cmd/kueue"
  "kuberay github.com/ray-project/kuberay/ray-operator ."
  "mpi-operator github.com/kubeflow/mpi-operator cmd/mpi-operator"
  "local-path-provisioner github.com/rancher/local-path-provisioner ."
)
total=$(( ${#programs[@]} + ${#installs[@]} )); i=0
for entry in "${programs[@]}"; do
  read -r name pkg <<<"$entry"; i=$((i + 1))
  step "[$i/$total] building $name ($pkg)"
  start=$SECONDS
  run "build $name" go build -trimpath -ldflags "-s -w $version_flags" -o "$assets/bin/$name" "$pkg"
  step "[$i/$total] $name built in $((SECONDS - start)) s"
done
for entry in "${installs[@]}"; do
  read -r name module sub <<<"$entry"; i=$((i + 1))
  dir=$(go list -m -f '{{.Dir}}' "$module" 2>/dev/null)
  version=$(go list -m -f '{{.Version}}' "$module" 2>/dev/null)
  [[ -n "$dir" && -n "$version" ]] || fail "step 'build $name': $module is not pinned in go.mod or not downloaded"
  step "[$i/$total] building $name ($module@$version ./$sub, with its own go.mod)"
  start=$SECONDS
  run "build $name" env -C "$dir" GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$assets/bin/$name" "./$sub"
  step "[$i/$total] $name built in $((SECONDS - start)) s"
done

# Real CRDs and stages, from the module downloads go.mod pins (never from a copy kept in this repository).
moddir() { go list -m -f '{{.Dir}}' "$1" 2>/dev/null; }
modver() { go list -m -f '{{.Version}}' "$1" 2>/dev/null; }
: >"$assets/provenance.tsv"
copy() {  # copy KIND MODULE RELATIVE-PATH-GLOB
  local kind=$1 module=$2 pattern=$3 dir found=0
  dir=$(moddir "$module") || fail "step 'crds $module': not in go.mod's build list"
  [[ -n "$dir" ]] || fail "step 'crds $module': module not downloaded"
  for file in $dir/$pattern; do
    [[ -f "$file" ]] || continue
    found=1
    local rel=${file#"$dir"/}
    local base; base=$(basename "$file")
    cp -f "$file" "$assets/$kind/$base" && chmod 0644 "$assets/$kind/$base"
    printf '%s\t%s\t%s@%s\t%s\n' "$kind" "$base" "$module" "$(modver "$module")" "$rel" >>"$assets/provenance.tsv"
  done
  [[ $found == 1 ]] || fail "step 'crds $module': nothing matches $pattern"
}
step "copying CRDs and kwok stages from the module downloads"
copy crds sigs.k8s.io/jobset 'config/components/crd/bases/*.yaml'
copy crds sigs.k8s.io/kueue 'config/components/crd/bases/*.yaml'
copy crds github.com/ray-project/kuberay/ray-operator 'config/crd/bases/*.yaml'
copy crds github.com/kubeflow/mpi-operator 'manifests/base/kubeflow.org_mpijobs.yaml'
copy crds sigs.k8s.io/kwok 'kustomize/crd/bases/*.yaml'
copy crds sigs.k8s.io/gateway-api 'config/crd/standard/*.yaml'
copy crds sigs.k8s.io/gateway-api-inference-extension 'config/crd/bases/*.yaml'
copy crds github.com/prometheus-operator/prometheus-operator 'example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml'
copy crds istio.io/api 'kubernetes/customresourcedefinitions.gen.yaml'
copy crds github.com/k8snetworkplumbingwg/network-attachment-definition-client 'artifacts/networks-crd.yaml'
copy stages sigs.k8s.io/kwok 'kustomize/stage/node/fast/node-initialize.yaml'
copy stages sigs.k8s.io/kwok 'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml'
copy stages sigs.k8s.io/kwok 'kustomize/stage/pod/general/pod-*.yaml'
# The operators' admission webhooks: the control plane points them at 127.0.0.1 instead of an in-cluster Service.
mkdir -p "$assets/webhooks/jobset" "$assets/webhooks/kueue"
copy webhooks/jobset sigs.k8s.io/jobset 'config/components/webhook/manifests.yaml'
copy webhooks/kueue sigs.k8s.io/kueue 'config/components/webhook/manifests.yaml'
# The local-path provisioner's own deploy manifest (RBAC, StorageClass, the ConfigMap with its helper pod).
copy storage github.com/rancher/local-path-provisioner 'deploy/local-path-storage.yaml'
echo "$stamp" >"$assets/stamp"
step "done: $assets ($(du -sh "$assets" | cut -f1))"
