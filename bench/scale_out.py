"""The scale-out shape under load: two ``zoo serve`` processes on one PostgreSQL database and
one S3 bucket (both real: ``make services``), N concurrent ``zoo`` clients for D seconds.

Prints, per operation (publish, resolve, search, latest = download of the latest version,
download of a pinned version), the count, throughput, p50 and p99 latency and errors, then
the invariants (version numbers 1..K without gap or duplicate, latest == K, every download
verified, download counters == completed downloads, no 5xx). Exit status 1 if one failed.

    . /tmp/openzoo-services.env && python bench/scale_out.py                 # 50 clients, 60 s
    python bench/scale_out.py --clients 20 --seconds 15
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.scale_out import (  # noqa: E402
    MISSING_SERVICES,
    LoadConfig,
    Services,
    check_invariants,
    format_report,
    run_scale_out,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--seconds", type=float, default=60.0, help="load duration (default 60)")
    ap.add_argument("--processes", type=int, default=2, help="hub processes (default 2)")
    args = ap.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.processes < 1:
        ap.error("--clients and --processes must be at least 1, --seconds above 0")
    services = Services.from_env()
    if services is None:
        sys.exit(MISSING_SERVICES)
    config = LoadConfig(clients=args.clients, seconds=args.seconds, processes=args.processes)
    result = run_scale_out(services, config)
    invariants = check_invariants(result)
    print(format_report(result, invariants))
    sys.exit(0 if all(i.held for i in invariants) else 1)


if __name__ == "__main__":
    main()
