"""`storage`: how every stage reads and writes local paths and s3:// URIs (components/common/storage.py)."""

from __future__ import annotations

from pydantic import Field

from components.common.section import Section


class StorageSection(Section):
    """The S3 endpoint and credentials come from the standard AWS variables (AWS_ENDPOINT_URL,
    AWS_ACCESS_KEY_ID, ...); these fields only override them."""

    endpoint_url: str | None = Field(None, description="S3 endpoint URL; None: AWS_ENDPOINT_URL, else AWS's own.")
    region: str | None = Field(None, description="S3 region; None: AWS_DEFAULT_REGION, else boto3's default.")
    verify_sha256: bool = Field(True, description=(
        "Check every object read against the sha256 recorded when it was written; a mismatch is an error."))
    external_raw_inputs: bool = Field(
        True, description="The raw inputs a person uploads (clean's data.input, an s3:// train.base_model, "
        "evaluate's base model) may lack a recorded sha256: it is then computed on read and recorded in the stage's "
        "report. Stage outputs never may. False demands a recorded digest on raw inputs too.")
    connect_timeout_s: float = Field(5.0, gt=0, le=300, description="Seconds to wait for the S3 endpoint to "
                                     "accept a connection, per attempt.")
    read_timeout_s: float = Field(5.0, gt=0, le=3600, description="Seconds to wait for any byte of an S3 answer, "
                                  "per attempt; an endpoint that never answers fails after about "
                                  "max_attempts x read_timeout_s.")
    max_attempts: int = Field(3, ge=1, le=10, description="Tries per S3 request (and per object download), the "
                              "first included, before the stage fails naming the endpoint.")
