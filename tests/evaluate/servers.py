"""A real llama.cpp OpenAI-compatible server on loopback, for the LLM-as-judge tests."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.fixtures.servers import free_port, stop, wait_http


@contextmanager
def llama_cpp_server(gguf: Path, log_dir: Path, n_ctx: int = 1024):
    """`python -m llama_cpp.server` serving `gguf` on 127.0.0.1; yields its base URL (…/v1); stopped by PID."""
    port = free_port()
    log_path = log_dir / "llama_server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", str(n_ctx), "--model_alias", "judge"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        try:
            wait_http(base + "/models", proc, timeout=120)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; server log:\n{log_path.read_text(errors='replace')[-3000:]}") from None
        yield base
    finally:
        stop(proc)
        log.close()
