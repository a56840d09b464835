#!/usr/bin/env bash
# Installs llama-cpp-python into the venv and lays out llama.cpp's HF->GGUF converter.
#
# llama-cpp-python has no wheel on PyPI: it builds from its sdist (5-11 minutes on 2 cores), so the
# built wheel is cached under $FINEGATE_CACHE and reused. The converter (convert_hf_to_gguf.py) and the
# gguf-py it must import come from the same sdist, so converter and runtime always match.
#
#   scripts/setup_llama_cpp.sh [VENV] [CONVERTER_DIR]
#   LLAMA_CPP_INSTALL=0 ...   # only build the wheel and extract the converter (the gguf image's builder stage)
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
VENV="${1:-.venv}"
DEST="${2:-.cache/llama.cpp}"
CACHE="${FINEGATE_CACHE:-$HOME/.cache/finegate}/llama-cpp-python-$VERSION"
SDIST="$CACHE/llama_cpp_python-$VERSION.tar.gz"

mkdir -p "$CACHE/wheels"
if [ ! -f "$SDIST" ]; then
  echo "setup: downloading llama-cpp-python $VERSION sdist"
  # --no-binary for this one package only: `--no-binary :all:` also forbids wheels of the build backend pip
  # installs to read the sdist's metadata (scikit-build-core, cmake, ninja...), so with pip's cache off
  # (Docker builds) it compiled that whole toolchain from source first: 27 minutes instead of seconds.
  "$VENV/bin/pip" download -q --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -d "$CACHE"
fi

wheel=$(ls "$CACHE"/wheels/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  echo "setup: building llama-cpp-python $VERSION from source (5-11 minutes on 2 cores; cached afterwards)"
  # GGML_NATIVE=OFF: the cached wheel must run on any x86-64 machine it is copied to, not only this CPU.
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF ${CMAKE_ARGS:-}" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$VENV/bin/pip" wheel -q --no-deps -w "$CACHE/wheels" "$SDIST"
  wheel=$(ls "$CACHE"/wheels/llama_cpp_python-"$VERSION"-*.whl | head -n1)
fi
if [ "${LLAMA_CPP_INSTALL:-1}" != 0 ]; then
  installed=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null || true)
  if [ "$installed" != "$VERSION" ]; then
    # The server extra (OpenAI-compatible endpoint used by the LLM-as-judge tests) comes with the wheel.
    # Under the project's constraints when they are at hand, so the extra's dependencies cannot move a pin.
    constraints="$(dirname "$0")/../requirements/constraints.txt"
    if [ -f "$constraints" ]; then
      "$VENV/bin/pip" install -q -c "$constraints" "$wheel[server]"
    else
      "$VENV/bin/pip" install -q "$wheel[server]"
    fi
  fi
fi

# The converter is a script plus two packages beside it: conversion/ (one module per architecture) and
# gguf-py (the GGUF writer it must use). A stamp names the version, so a new VERSION re-extracts.
if [ "$(cat "$DEST/.version" 2>/dev/null || true)" != "$VERSION" ] || [ ! -f "$DEST/convert_hf_to_gguf.py" ]; then
  echo "setup: extracting llama.cpp converter to $DEST"
  rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
  tar -xzf "$SDIST" -C "$DEST.tmp" --strip-components=3 \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/convert_hf_to_gguf.py" \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/conversion" \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/gguf-py"
  echo "$VERSION" > "$DEST.tmp/.version"
  rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
fi
