#!/usr/bin/env bash
# Builds finegate's images and tags them with the names the pipeline compiles in
# (components/common/images.py: $FINEGATE_IMAGE_REGISTRY/<name>:$FINEGATE_IMAGE_TAG).
#
#   images/build.sh                   # base (if missing) + data, train, gguf, mlflow
#   images/build.sh data gguf         # only these
#   images/build.sh --push            # ...and push them (default registry: kind's localhost:5001)
#
# Environment:
#   FINEGATE_IMAGE_REGISTRY  default localhost:5001/finegate (kind's local registry, k8s/kind/)
#   FINEGATE_IMAGE_TAG       default 0.1.0
#   BASE_IMAGE               default finegate/base:bookworm, built by images/base/build.sh when absent
#   DOCKER_BUILD_ARGS        extra `docker build` arguments, e.g. the CUDA ones in images/gguf/Dockerfile
# Compile the pipeline with the same two FINEGATE_IMAGE_* values, or its pods ask for images nobody built.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_IMAGES=(data train gguf mlflow)
BASE_IMAGE="${BASE_IMAGE:-finegate/base:bookworm}"
push=0
wanted=()
for arg in "$@"; do
  case "$arg" in
    --push) push=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) [ -f "images/$arg/Dockerfile" ] || { echo "build: no images/$arg/Dockerfile (images: ${ALL_IMAGES[*]})" >&2; exit 2; }
       wanted+=("$arg") ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=("${ALL_IMAGES[@]}")

# One source of truth for registry and tag: the module the pipeline compiles its image names from.
read -r REGISTRY TAG < <(python3 -c 'from components.common import images; print(images.REGISTRY, images.TAG)')

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if [ "$BASE_IMAGE" = "finegate/base:bookworm" ]; then
    BASE_TAG="$BASE_IMAGE" images/base/build.sh
  else
    echo "build: base image $BASE_IMAGE is not here; it is pulled by docker build" >&2
  fi
fi

for name in "${wanted[@]}"; do
  ref="$REGISTRY/$name:$TAG"
  echo "build: $ref"
  start=$SECONDS
  # --network host: RUN steps reach the package index through the host's own network and proxy setup.
  # shellcheck disable=SC2086
  docker build --network host --build-arg BASE_IMAGE="$BASE_IMAGE" ${DOCKER_BUILD_ARGS:-} \
    -f "images/$name/Dockerfile" -t "$ref" .
  echo "build: $ref built in $((SECONDS - start)) s"
  if [ "$push" = 1 ]; then
    docker push "$ref"
  fi
done
