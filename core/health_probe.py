"""`python -m core.health_probe ADDR [--tls-ca F] [--tls-cert F --tls-key F] [--server-name N] [--service S]`.

Kubernetes' native gRPC probes speak plaintext only, so a router or worker that serves TLS (the `tls` overlay)
is probed with this instead, from inside its own pod: grpc.health.v1 Check (service "" for the whole server,
or `--service`, e.g. the router's `liveness`) over TLS, mutual when given a certificate. Exit 0 when SERVING, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.tls import ChannelTls, TlsConfigError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.health_probe", description=__doc__.splitlines()[0])
    p.add_argument("address", help="host:port to check, e.g. 127.0.0.1:50051")
    p.add_argument(
        "--tls-ca", metavar="FILE", help="CA of the server's certificate (TLS; without it: plaintext)"
    )
    p.add_argument("--tls-cert", metavar="FILE", help="this client's certificate, for mutual TLS")
    p.add_argument("--tls-key", metavar="FILE", help="its private key")
    p.add_argument("--server-name", default="", help="the name the server's certificate carries")
    p.add_argument(
        "--service", default="", help="the health service name to ask for (default: '', the whole server)"
    )
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default: %(default)s)")
    return p


def check(args: argparse.Namespace) -> tuple[bool, str]:
    if args.tls_ca:
        tls = ChannelTls(args.tls_ca, args.tls_cert or "", args.tls_key or "", args.server_name)
        channel = grpc.secure_channel(args.address, tls.credentials(), options=tls.options())
    else:
        channel = grpc.insecure_channel(args.address)
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as error:
            return False, f"{error.code().name}: {error.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return answer.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        serving, said = check(args)
    except TlsConfigError as error:
        serving, said = False, str(error)
    print(f"{args.address}: {said}", file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
