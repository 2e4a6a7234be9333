"""`headwater` command line: parse arguments, call the library.

    headwater serve [--data-dir DIR] [--listen HOST:PORT] [--advertised-listener HOST:PORT]
                    [--config KEY=VALUE ...]
    headwater demo [--data-dir DIR] [--records N] [--value-bytes B] [--flush-policy P]

`serve` runs a Kafka broker on DIR (default ./headwater-data) for any Kafka client: it prints
one line `headwater listening on HOST:PORT` once it accepts connections, and stops cleanly on
SIGTERM or SIGINT (requests in flight answered, logs flushed and closed, exit code 0).
`demo` writes N records into a partition log under DIR, reads them back, and prints the rates.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    from headwater.log import PartitionLog

    path = f"{args.data_dir}/demo-0"
    if args.fresh:
        shutil.rmtree(path, ignore_errors=True)
    n, size, per_batch = args.records, args.value_bytes, args.batch
    values = [bytes([65 + i % 26]) * size for i in range(per_batch)]
    config = {"flush.policy": args.flush_policy, "segment.bytes": 256 << 20, "max.message.bytes": 64 << 20}
    with PartitionLog.open(path, **config) as log:
        start_offset = log.log_end_offset
        t0 = time.perf_counter()
        written = 0
        while written < n:
            k = min(per_batch, n - written)
            log.append(values if k == per_batch else values[:k])
            written += k
        log.flush()
        t1 = time.perf_counter()
        read = 0
        offset = start_offset
        end = log.log_end_offset
        while offset < end:
            with log.read(offset, 8 << 20) as result:
                for batch, view in result.batches():
                    read += batch.records_count
                    offset = batch.last_offset + 1
                    view.release()
        t2 = time.perf_counter()
        recovery = log.recovery.summary()
    mb = n * size / 1e6
    print(f"headwater demo: {path} ({args.flush_policy} flush), opened: {recovery}")
    print(f"wrote {n:,} records of {size} B in {t1 - t0:.3f} s: {n / (t1 - t0) / 1e6:.2f} M records/s, {mb / (t1 - t0):.0f} MB/s")
    print(f"read  {read:,} records (batches, CRC checked) in {t2 - t1:.3f} s: {read / (t2 - t1) / 1e6:.2f} M records/s")
    return 0 if read == n else 1


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from headwater.client.broker import Broker
    from headwater.errors import ConfigError, DataDirLockedError
    from headwater.server import KafkaServer, new_event_loop, parse_hostport

    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config: dict[str, str] = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            print(f"headwater serve: --config expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        config[key.strip()] = value.strip()
    try:
        host, port = parse_hostport(args.listen)
        adv_host, adv_port = parse_hostport(args.advertised_listener, port) if args.advertised_listener else (None, None)
    except ValueError as exc:
        print(f"headwater serve: {exc}", file=sys.stderr)
        return 2
    try:
        broker = Broker(args.data_dir, config)
    except (ConfigError, DataDirLockedError) as exc:
        print(f"headwater serve: {exc}", file=sys.stderr)
        return 2
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    server = KafkaServer(broker, host, port, advertised_host=adv_host, advertised_port=adv_port)

    async def run() -> None:
        await server.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: loop.create_task(server.stop()))
        print(f"headwater listening on {server.host}:{server.port}", flush=True)
        await server.serve_forever()

    try:
        loop.run_until_complete(run())
    except OSError as exc:
        print(f"headwater serve: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    finally:
        broker.close()
        loop.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="headwater", description="headwater: a Kafka-compatible log")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a Kafka-compatible broker on a TCP port")
    serve.add_argument("--data-dir", default="./headwater-data")
    serve.add_argument("--listen", default="127.0.0.1:9092", metavar="HOST:PORT", help="PORT 0 picks a free port")
    serve.add_argument("--advertised-listener", default=None, metavar="HOST:PORT", help="the address clients are told to connect to")
    serve.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="broker or default topic setting, Kafka names (repeatable)")
    serve.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    demo = sub.add_parser("demo", help="write and read back records in a local partition log")
    demo.add_argument("--data-dir", default="./headwater-data")
    demo.add_argument("--records", type=int, default=1_000_000)
    demo.add_argument("--value-bytes", type=int, default=100)
    demo.add_argument("--batch", type=int, default=10_000, help="records per append (one batch)")
    demo.add_argument("--flush-policy", default="batch", choices=("batch", "interval", "none"))
    demo.add_argument("--keep", dest="fresh", action="store_false", help="append to an existing demo log")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "demo":
        return _demo(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
