"""Container images the components run in (built from images/). Override per cluster registry with
FINEGATE_IMAGE_REGISTRY and FINEGATE_IMAGE_TAG when compiling the pipeline."""

from __future__ import annotations

import os

REGISTRY = os.environ.get("FINEGATE_IMAGE_REGISTRY", "localhost:5001/finegate")
TAG = os.environ.get("FINEGATE_IMAGE_TAG", "0.1.0")

DATA_IMAGE = f"{REGISTRY}/data:{TAG}"    # clean, split: pandas, pyarrow, datasketch
TRAIN_IMAGE = f"{REGISTRY}/train:{TAG}"  # train, hf_check: CUDA torch, transformers, trl, peft
GGUF_IMAGE = f"{REGISTRY}/gguf:{TAG}"    # gguf, evaluate, register: llama.cpp runtime and converter
