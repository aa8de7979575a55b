"""The Dockerfile, requirements.lock and docker-compose.yml, read for what they promise (there
is no Docker engine here): a hash-pinned install that satisfies pyproject.toml and leaves
out the embedded PostgreSQL, pinned base images, a /readyz health check, and Prometheus
starting once the collector is healthy."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
IMAGE = re.compile(r"^(?P<name>[\w./-]+):v?(?P<version>[\d.]+)(-[\w.-]+)?(@sha256:[0-9a-f]{64})?$")
# PostgreSQL names a release MAJOR.MINOR; the others here MAJOR.MINOR.PATCH.
RELEASE_PARTS = {"postgres": 2}


def _pinned(image: str) -> bool:
    """True when the image is named by an exact release, not a moving tag like 16 or 3.11."""
    match = IMAGE.match(image)
    if not match:
        return False
    parts = match["version"].split(".")
    wanted = RELEASE_PARTS.get(match["name"].rsplit("/", 1)[-1], 3)
    return len(parts) == wanted and all(part.isdigit() for part in parts)


def _locked() -> dict[str, tuple[str, int]]:
    """Package → (version, number of hashes) from requirements.lock."""
    text = (ROOT / "requirements.lock").read_text()
    entries: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if match:
            hashes = len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block))
            entries[canonicalize_name(match[1])] = (match[2], hashes)
    return entries


def test_lock_pins_every_dependency_with_hashes_and_satisfies_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    locked = _locked()
    assert locked, "requirements.lock lists nothing"
    assert all(hashes for _, hashes in locked.values()), "every pin needs its --hash lines"
    required = [Requirement(text) for text in project["project"]["dependencies"]]
    required += [Requirement(text) for text in project["build-system"]["requires"]]
    for requirement in required:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements.lock: run `make lock`"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, pyproject wants {requirement}: "
            "run `make lock`"
        )
    # The image has no use for the extras: no embedded PostgreSQL, no test tools.
    for extra in project["project"]["optional-dependencies"].values():
        for text in extra:
            assert canonicalize_name(Requirement(text).name) not in locked, text


def test_dockerfile_installs_from_the_lock_on_a_pinned_base() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = re.sub(r"\\\n\s*", " ", dockerfile)  # join continued lines
    bases = re.findall(r"^FROM\s+(\S+)", instructions, re.MULTILINE)
    assert bases and all(_pinned(base) for base in bases), bases
    runs = re.findall(r"^RUN\s+(.*)$", instructions, re.MULTILINE)
    installs = [run for run in runs if "pip install" in run]
    assert installs, "no pip install in the Dockerfile"
    for run in installs:
        locked_install = "--require-hashes" in run and "-r requirements.lock" in run
        # Anything else may only install the project itself, resolving nothing.
        assert locked_install or ("--no-deps" in run and run.rstrip().endswith("-e .")), run
    assert "COPY requirements.lock" in dockerfile
    assert "embedded" not in " ".join(installs) and "pgserver" not in " ".join(installs)
    healthcheck = re.search(r"^HEALTHCHECK\s+(.*)$", instructions, re.MULTILINE)
    assert healthcheck and "/readyz" in healthcheck[1] and "/healthz" not in healthcheck[1]


def test_compose_pins_images_and_starts_prometheus_once_the_collector_is_healthy() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, service in services.items():
        if "build" not in service:
            assert _pinned(service["image"]), f"{name}: {service['image']}"
    assert services["prometheus"]["depends_on"]["collector"]["condition"] == "service_healthy"
    assert services["collector"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "TELEMETRY_DATABASE_URL" in services["collector"]["environment"]


def test_image_and_compose_publish_both_otlp_ports() -> None:
    settings = Settings.model_fields
    http, grpc = settings["port"].default, settings["grpc_port"].default
    assert (http, grpc) == (4318, 4317)
    exposed = re.findall(r"^EXPOSE\s+(.*)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert {int(port) for line in exposed for port in line.split()} == {http, grpc}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    published = compose["services"]["collector"]["ports"]
    assert {f"{http}:{http}", f"{grpc}:{grpc}"} <= set(published)
