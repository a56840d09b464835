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
#   BUILD_CA_BUNDLE          CA bundle lent to pip steps (default /etc/ssl/certs/ca-certificates.crt); in no layer
#   TORCH_FROM               gguf's CPU torch: cpu-index (default, download.pytorch.org) or pypi (CUDA wheel, bigger)
#   LLAMA_CPP_PREBUILT       a folder holding llama-cpp-python-<version>/ as scripts/setup_llama_cpp.sh caches it
#                            (e.g. ~/.cache/finegate): the gguf image reuses that wheel instead of compiling
#   DOCKER                   the docker client (default: docker, else /usr/bin/docker if only that has BuildKit)
#   DOCKER_BUILD_ARGS        extra `docker build` arguments, e.g. the CUDA ones in images/gguf/Dockerfile
# Compile the pipeline with the same two FINEGATE_IMAGE_* values, or its pods ask for images nobody built.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_IMAGES=(data train gguf mlflow)
BASE_IMAGE="${BASE_IMAGE:-finegate/base:bookworm}"
BUILD_CA_BUNDLE="${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
TORCH_FROM="${TORCH_FROM:-cpu-index}"
PREBUILT_DIR=images/gguf/prebuilt
push=0
wanted=()
for arg in "$@"; do
  case "$arg" in
    --push) push=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) [ -f "images/$arg/Dockerfile" ] || { echo "build: no images/$arg/Dockerfile (images: ${ALL_IMAGES[*]})" >&2; exit 2; }
       wanted+=("$arg") ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=("${ALL_IMAGES[@]}")
case "$TORCH_FROM" in cpu-index|pypi) ;; *) echo "build: TORCH_FROM must be cpu-index or pypi, not '$TORCH_FROM'" >&2; exit 2 ;; esac

# The Dockerfiles need BuildKit (secret mounts). A docker CLI >= 23 builds with BuildKit only through its
# buildx plugin; an older CLI (Debian's docker.io) has it built in and takes DOCKER_BUILDKIT=1.
has_buildkit() {
  "$1" buildx version >/dev/null 2>&1 && return 0
  local major
  major="$("$1" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)"
  [ -n "$major" ] && [ "$major" -lt 23 ]
}
if [ -z "${DOCKER:-}" ]; then
  DOCKER=docker
  if ! has_buildkit docker && [ -x /usr/bin/docker ] && has_buildkit /usr/bin/docker; then DOCKER=/usr/bin/docker; fi
fi
has_buildkit "$DOCKER" || { echo "build: $DOCKER cannot build with BuildKit: install its buildx plugin, or set DOCKER to a client older than 23 (Debian's docker.io)" >&2; exit 2; }
export DOCKER_BUILDKIT=1

# One source of truth for registry and tag: the module the pipeline compiles its image names from.
read -r REGISTRY TAG < <(python3 -c 'from components.common import images; print(images.REGISTRY, images.TAG)')

if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if [ "$BASE_IMAGE" = "finegate/base:bookworm" ]; then
    start=$SECONDS
    BASE_TAG="$BASE_IMAGE" images/base/build.sh
    echo "build: $BASE_IMAGE built in $((SECONDS - start)) s, $(( $("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE") / 1000000 )) MB"
  else
    echo "build: base image $BASE_IMAGE is not here; it is pulled by docker build" >&2
  fi
fi

# The host's CA bundle goes to pip as a secret mount: present during a RUN step, in no layer of the image.
secret=()
if [ -f "$BUILD_CA_BUNDLE" ]; then secret=(--secret "id=ca-bundle,src=$BUILD_CA_BUNDLE"); fi

# images/gguf/prebuilt/ is the gguf build's door for a wheel built elsewhere; emptied before and after every
# gguf build, so nothing stale slips in and nothing stays behind. Its contents are git-ignored.
clear_prebuilt() {
  find "$PREBUILT_DIR" -mindepth 1 ! -name README.md -exec rm -rf {} +
}
stage_prebuilt_llama() {
  clear_prebuilt
  [ -n "${LLAMA_CPP_PREBUILT:-}" ] || return 0
  trap clear_prebuilt EXIT
  local version src
  version="$(sed -n 's/^VERSION="${LLAMA_CPP_PYTHON_VERSION:-\(.*\)}"$/\1/p' scripts/setup_llama_cpp.sh)"
  src="$LLAMA_CPP_PREBUILT/llama-cpp-python-$version"
  if ls "$src"/wheels/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
    echo "build: gguf reuses the llama-cpp-python $version wheel from $src"
    mkdir -p "$PREBUILT_DIR/llama-cpp-python-$version"
    cp -r "$src"/. "$PREBUILT_DIR/llama-cpp-python-$version/"
  else
    echo "build: no llama-cpp-python $version wheel under $src; the gguf image compiles it" >&2
  fi
}

for name in "${wanted[@]}"; do
  ref="$REGISTRY/$name:$TAG"
  args=()
  if [ "$name" = gguf ]; then
    stage_prebuilt_llama
    if [ "$TORCH_FROM" = pypi ]; then args+=(--build-arg TORCH_INDEX_URL= --build-arg TORCH_LOCAL_VERSION=); fi
  fi
  echo "build: $ref"
  start=$SECONDS
  # --network host: RUN steps reach the package index through the host's own network and proxy setup.
  # shellcheck disable=SC2086
  "$DOCKER" build --network host --build-arg BASE_IMAGE="$BASE_IMAGE" ${secret[@]+"${secret[@]}"} \
    ${args[@]+"${args[@]}"} ${DOCKER_BUILD_ARGS:-} -f "images/$name/Dockerfile" -t "$ref" .
  echo "build: $ref built in $((SECONDS - start)) s, $(( $("$DOCKER" image inspect -f '{{.Size}}' "$ref") / 1000000 )) MB"
  if [ "$push" = 1 ]; then
    "$DOCKER" push "$ref"
  fi
done
