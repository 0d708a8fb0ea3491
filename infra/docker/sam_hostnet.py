"""Run SAM CLI so that `--docker-network host` really means host networking.

Why: SAM CLI 1.170 ignores `--docker-network host` (upstream removed the handling in
aws/aws-sam-cli#5279; the fix in #7278 was not merged). The container stays on Docker's
default network and SAM reaches the Runtime Interface Emulator (RIE) through a published
port. With our engine (`dockerd --bridge=none`, see start-dockerd.sh) there is no such
network, so every invoke ends in "Timed out while attempting to establish a connection to
the container".

What this changes, only when SAM is asked for `--docker-network host`:
- the container is created with `network_mode=host`, without published ports;
- the RIE listens on 127.0.0.1:<the port SAM picked> instead of 0.0.0.0:8080, and its
  Runtime API on a free loopback port instead of 127.0.0.1:9001, so several containers
  (start-api, warm containers) and other services do not collide on fixed ports.

Everything else is SAM CLI as installed. Usage (any `sam` arguments):

    python infra/docker/sam_hostnet.py local invoke PredictFunction --docker-network host ...

or the `infra/docker/sam-hostnet` shell wrapper, which picks the Python of the `sam` on PATH.
On a machine with a normal Docker engine (bridge network, registry access) use plain `sam`.
"""

from __future__ import annotations

import sys
from typing import Any

from docker.models.containers import ContainerCollection
from samcli.local.docker.container import Container
from samcli.local.docker.utils import find_free_port

_RIE = "/var/rapid/aws-lambda-rie"
_original_create = Container.create
_original_docker_create = ContainerCollection.create


def _create_on_host_network(self: Any, context: Any) -> Any:
    if self.network_id == "host":
        self._container_opts = {**(self._container_opts or {}), "network_mode": "host"}
        entrypoint = list(self._entrypoint or [])
        if (
            entrypoint
            and entrypoint[0] == _RIE
            and "--runtime-interface-emulator-address" not in entrypoint
        ):
            interface = self._container_host_interface or "127.0.0.1"
            runtime_api_port = find_free_port(network_interface="127.0.0.1", start=9002, end=9999)
            # Flags right after the binary: an image's own entrypoint may follow.
            self._entrypoint = [
                _RIE,
                "--runtime-interface-emulator-address",
                f"{interface}:{self.rapid_port_host}",
                "--runtime-api-address",
                f"127.0.0.1:{runtime_api_port}",
                *entrypoint[1:],
            ]
    return _original_create(self, context)


def _docker_create_without_ports_on_host(
    self: Any, image: Any, command: Any = None, **kwargs: Any
) -> Any:
    # docker-py refuses published ports together with host networking; they mean nothing there.
    if kwargs.get("network_mode") == "host":
        kwargs.pop("ports", None)
    return _original_docker_create(self, image, command, **kwargs)


Container.create = _create_on_host_network
ContainerCollection.create = _docker_create_without_ports_on_host


def main() -> int:
    from samcli.cli.main import cli

    sys.argv[0] = "sam"
    return cli()  # type: ignore[no-any-return]


if __name__ == "__main__":
    sys.exit(main())
