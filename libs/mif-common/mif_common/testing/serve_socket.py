"""`python -m mif_common.testing.serve_socket --fd N <factory>`: uvicorn serving an app factory on an
inherited, already bound TCP socket (`ServiceProcess`: the port is held from the moment it is chosen).

Not `uvicorn --fd`: uvicorn rebuilds that socket as AF_UNIX, so asyncio does not set TCP_NODELAY on the
connections it accepts, and every keep-alive request then waits ~40 ms on Nagle's algorithm and delayed
ACKs (the fuzz suite went from 61 s to 395 s). Here the socket keeps its real family."""

from __future__ import annotations

import argparse
import socket

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("factory")
    args = parser.parse_args()
    sock = socket.socket(fileno=args.fd)  # family, type and protocol read from the descriptor
    config = uvicorn.Config(
        args.factory,
        factory=True,
        access_log=False,
        proxy_headers=False,  # as in the Procfile: the gateway decides the client address itself
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
