#!/bin/sh
# kind's local-registry recipe for finegate: a registry container `kind-registry` on 127.0.0.1:5001, a
# kind cluster (k8s/kind/cluster.yaml) whose nodes pull localhost:5001/... from it, and the
# `local-registry-hosting` ConfigMap that tells tools where the registry is (KEP-1755).
#   k8s/kind/create.sh          # then: images/build.sh --push
# Air-gapped: FINEGATE_IMAGE_MIRROR=registry.example.com/mirror k8s/kind/create.sh pulls the node and
# registry images from the mirror and points every node's containerd at it for each registry the cluster
# pulls from (`finegate images --mirror` lists what to copy there; layout MIRROR/HOST/PATH:TAG).
set -o errexit
cd "$(dirname "$0")"

# 0. Random passwords for MinIO and PostgreSQL (kept if already there), read by `kubectl apply -k k8s/`.
../secrets/generate.sh

reg_name='kind-registry'
reg_port='5001'
reg_image='docker.io/library/registry:2.8.3'
cluster_name="$(sed -n 's/^name: *//p' cluster.yaml)"

node_image="$(sed -n 's/^ *image: *//p' cluster.yaml)"
mirror="${FINEGATE_IMAGE_MIRROR:-}"
mirror="${mirror%/}"
# Images named HOST/PATH:TAG are mirrored at MIRROR/HOST/PATH:TAG; tagging them back under their own name
# lets docker and kind find them locally instead of pulling.
if [ -n "${mirror}" ]; then
  for image in "${node_image}" "${reg_image}"; do
    docker pull "${mirror}/${image}" && docker tag "${mirror}/${image}" "${image}"
  done
fi

# 1. The registry container, unless it runs already.
if [ "$(docker inspect -f '{{.State.Running}}' "${reg_name}" 2>/dev/null || true)" != 'true' ]; then
  docker run -d --restart=always -p "127.0.0.1:${reg_port}:5000" --network bridge --name "${reg_name}" "${reg_image}"
fi

# 2. The cluster (containerd reads registry hosts from /etc/containerd/certs.d).
if ! kind get clusters | grep -qx "${cluster_name}"; then
  kind create cluster --config cluster.yaml
fi

# 3. On every node, localhost:5001 means the registry container: inside a node, localhost is the node.
registry_dir="/etc/containerd/certs.d/localhost:${reg_port}"
for node in $(kind get nodes --name "${cluster_name}"); do
  docker exec "${node}" mkdir -p "${registry_dir}"
  printf '[host."http://%s:5000"]\n' "${reg_name}" | docker exec -i "${node}" cp /dev/stdin "${registry_dir}/hosts.toml"
done

# 3b. With a mirror, every registry the cluster pulls from resolves through it (containerd's hosts.toml,
#     override_path: the mirror serves HOST's repositories under /v2/PREFIX/HOST/).
if [ -n "${mirror}" ]; then
  mirror_host="${mirror%%/*}"
  mirror_prefix="${mirror#"${mirror_host}"}"
  hosts="$(cd ../.. && "${PYTHON:-.venv/bin/python}" -m pipelines.cli images --registry-hosts)"
  for node in $(kind get nodes --name "${cluster_name}"); do
    for host in ${hosts}; do
      server="https://${host}"
      [ "${host}" = docker.io ] && server="https://registry-1.docker.io"
      docker exec "${node}" mkdir -p "/etc/containerd/certs.d/${host}"
      printf 'server = "%s"\n[host."https://%s/v2%s/%s"]\n  capabilities = ["pull", "resolve"]\n  override_path = true\n' \
        "${server}" "${mirror_host}" "${mirror_prefix}" "${host}" |
        docker exec -i "${node}" cp /dev/stdin "/etc/containerd/certs.d/${host}/hosts.toml"
    done
  done
fi

# 4. The registry joins the cluster's network, so nodes resolve `kind-registry`.
if [ "$(docker inspect -f='{{json .NetworkSettings.Networks.kind}}' "${reg_name}")" = 'null' ]; then
  docker network connect "kind" "${reg_name}"
fi

# 5. Document the registry for tools that look for it.
kubectl apply --context "kind-${cluster_name}" -f - <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:${reg_port}"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
YAML
echo "kind cluster '${cluster_name}' ready; registry at localhost:${reg_port}"
