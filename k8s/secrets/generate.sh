#!/bin/sh
# Writes the random passwords k8s/secrets/kustomization.yaml turns into Secrets, once: an existing file is
# kept, so re-running (or `make kind-up` again) never changes a password a running cluster already uses.
#   k8s/secrets/generate.sh            # then: kubectl apply -k k8s/
# The files live in k8s/secrets/generated/ (gitignored, mode 600). Hex only: the values are safe in URIs
# and shell variables. For a shared cluster use a secret store instead (k8s/README.md).
set -o errexit -o nounset
dir="$(cd "$(dirname "$0")" && pwd)/generated"
umask 077
mkdir -p "$dir"
for name in minio-root-password postgres-password; do
  if [ ! -s "$dir/$name" ]; then
    # No trailing newline: kustomize takes the file's bytes as the value.
    printf '%s' "$(openssl rand -hex 24)" > "$dir/$name"
    echo "generated $dir/$name"
  fi
done
