"""tests/images builds nothing and mocks nothing: it runs the images scripts/images_check.sh built, with a real
Docker engine, a real PostgreSQL and moto's S3 server. `make test` deselects it (no Docker there); `make
images-check` runs it with FINEGATE_IMAGES_CHECK=1 and FINEGATE_IMAGES naming the images it built."""

from __future__ import annotations

import os

import pytest

from tests.images.docker_cli import built_images, image_ref

ENABLED = os.environ.get("FINEGATE_IMAGES_CHECK") == "1"


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    docker_items = [item for item in items if item.get_closest_marker("docker")]
    if docker_items:
        config.hook.pytest_deselected(items=docker_items)
        items[:] = [item for item in items if not item.get_closest_marker("docker")]


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """{name: reference} of every image this check built; one that is missing locally fails the check."""
    from tests.images.docker_cli import image_exists

    refs = {name: image_ref(name) for name in built_images()}
    missing = [ref for ref in refs.values() if not image_exists(ref)]
    assert not missing, f"images not built: {missing} (run scripts/images_check.sh, or images/build.sh)"
    return refs
