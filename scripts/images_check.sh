#!/usr/bin/env bash
# Builds finegate's images from nothing and runs each one the way a cluster would (tests/images):
#   base (debootstrap + docker import), data, gguf, mlflow; the train image only with --with-train.
#   - finegate --help and finegate compile in every finegate image, mlflow --version in the mlflow one;
#   - every image runs as its numeric non-root user; no layer holds the build host's extra CA certificates;
#   - clean -> split through KFP's DockerRunner in the data image, compared with the same stages run here;
#   - finegate gguf on a tiny Llama inside the gguf image (no network);
#   - the mlflow image with k8s/mlflow's args against PostgreSQL: a model registered, aliased, fetched back.
#
#   scripts/images_check.sh                # make images-check
#   scripts/images_check.sh --with-train   # also the train image (CUDA torch, several GB)
#
# Needs root or password-less sudo (apt-get, dockerd, debootstrap) and the project venv (make setup). Installs docker.io,
# debootstrap and postgresql from Debian when missing; starts dockerd when none answers and stops it at the
# end. TORCH_FROM defaults to pypi here (CI reaches PyPI only; images/README.md), and the gguf image reuses
# the llama-cpp-python wheel `make setup` cached (LLAMA_CPP_PREBUILT, default ~/.cache/finegate).
set -euo pipefail
cd "$(dirname "$0")/.."

images=(data gguf mlflow)
for arg in "$@"; do
  case "$arg" in
    --with-train) images+=(train) ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "images-check: unknown argument $arg (--with-train)" >&2; exit 2 ;;
  esac
done
[ -x .venv/bin/python ] || { echo "images-check: no .venv (make setup first)" >&2; exit 2; }
export TORCH_FROM="${TORCH_FROM:-pypi}"
export LLAMA_CPP_PREBUILT="${LLAMA_CPP_PREBUILT:-${FINEGATE_CACHE:-$HOME/.cache/finegate}}"
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || { echo "images-check: needs root (apt-get, dockerd, debootstrap), or sudo without a password" >&2; exit 2; }
  exec sudo -n env TORCH_FROM="$TORCH_FROM" LLAMA_CPP_PREBUILT="$LLAMA_CPP_PREBUILT" "$0" "$@"
fi
started=$SECONDS
logs="$(mktemp -d /tmp/finegate-images-check.XXXXXX)"

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "images-check: apt-get install ${missing[*]}"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } >"$logs/apt.log" 2>&1 \
    || { tail -n 30 "$logs/apt.log" >&2; exit 1; }
fi

dockerd_pid=""
stop_dockerd() {
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
}
trap stop_dockerd EXIT
if ! docker info >/dev/null 2>&1; then
  echo "images-check: starting dockerd (log: $logs/dockerd.log)"
  dockerd >"$logs/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 30 "$logs/dockerd.log" >&2; echo "images-check: dockerd did not start" >&2; exit 1; }
fi

echo "images-check: building ${images[*]} (log: $logs/build.log)"
if ! images/build.sh "${images[@]}" >"$logs/build.log" 2>&1; then
  tail -n 60 "$logs/build.log" >&2
  echo "images-check: build failed (full log: $logs/build.log)" >&2
  exit 1
fi
grep -E '^build: .* built in ' "$logs/build.log"

# No bytecode or pytest cache: as root, they would leave root-owned files in the checkout.
FINEGATE_IMAGES_CHECK=1 FINEGATE_IMAGES="${images[*]}" PYTHONPATH="$PWD" PYTHONDONTWRITEBYTECODE=1 \
  .venv/bin/python -m pytest -q -p no:cacheprovider --durations=0 tests/images
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'finegate' || true
echo "images-check: passed in $((SECONDS - started)) s"
