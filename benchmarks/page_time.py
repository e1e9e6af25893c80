"""Time one page as a signed-in user, in one process (Django's test client): the view, its
templates and its queries, without a server. With --against, the same page is timed side by side
with another checkout's code on the same database, and the ratio printed.

Run in the folder of a demo database (`cartrial demo --no-serve` made cartrial.sqlite3 there):

    PYTHONPATH=/path/to/cartrial/src /path/to/cartrial/.venv/bin/python /path/to/cartrial/benchmarks/page_time.py \\
        /dashboards/study/ --user sponsor.admin --repeat 20 [--against /path/to/other/checkout/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _measure(url: str, username: str, repeat: int) -> dict[str, float]:
    os.environ.setdefault("CARTRIAL_DEBUG", "1")
    from cartrial.cli import web

    web._django(generate_key=True)
    from django.conf import settings
    from django.test import Client

    from cartrial.apps.accounts.models import User

    settings.ALLOWED_HOSTS = ["*"]
    settings.CARTRIAL_TWO_FACTOR_REQUIRED = False  # the page is timed, not the sign-in
    client = Client()
    client.force_login(User.objects.get(username=username))
    first = client.get(url)
    if first.status_code != 200:
        raise SystemExit(f"{url} answered {first.status_code} for {username}")
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - began)
    return {"mean_ms": 1000 * statistics.mean(times), "median_ms": 1000 * statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--user", default="sponsor.admin")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--against", help="another checkout's src folder, timed in the same run")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(_measure(args.url, args.user, args.repeat)))
        return
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    runs = [("this checkout", here)] + ([("--against", args.against)] if args.against else [])
    results = {}
    for round_ in range(2):  # two rounds, alternating, so both see the same load
        for name, src in runs if round_ == 0 else reversed(runs):
            env = dict(os.environ, PYTHONPATH=src)
            command = [sys.executable, __file__, args.url, "--user", args.user, "--repeat", str(args.repeat), "--json"]
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            results.setdefault(name, []).append(json.loads(out.strip().splitlines()[-1])["median_ms"])
    print(f"{args.url} as {args.user}, median of {args.repeat} requests, two rounds:")
    for name, medians in results.items():
        print(f"  {name:14} {min(medians):8.1f} ms  (rounds: {', '.join(f'{m:.1f}' for m in medians)})")
    if args.against:
        print(f"  ratio this / against: {min(results['this checkout']) / min(results['--against']):.2f}")


if __name__ == "__main__":
    main()
