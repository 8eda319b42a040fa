"""The seal's cost per result: time and bytes the agency's seal adds to a result PDF.

    .venv/bin/python benchmarks/seal.py            # 20 results of each kind
    .venv/bin/python benchmarks/seal.py --quick    # 3 of each (a smoke test)

A certomancer PKI is served on loopback (tests/pki.py), so the TSA and OCSP answer at once:
against a CA's real TSA and OCSP over the Internet, add their round trips."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from saraban_mail import results, seal  # noqa: E402
from saraban_mail.config import Config, Seal  # noqa: E402
from tests.pdfs import text_pdf  # noqa: E402
from tests.pki import make_pki  # noqa: E402


def scanned(pages: int) -> bytes:
    """A PDF the size of a scan: pages of incompressible image-like data."""
    import io
    import os

    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    writer.add_attachment("scan.bin", os.urandom(300_000 * pages))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def measure(config: Config, data: bytes, password: str | None, runs: int) -> tuple[float, int]:
    key = seal.load_key(config.seal)
    sealer = results.Sealer(key, config)
    times, added = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        (document,) = results.protect([("r.pdf", "application/pdf", data)], password, sealer)
        times.append(time.perf_counter() - started)
        added = len(document.data) - len(data)
    return statistics.median(times), added


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    with tempfile.TemporaryDirectory() as folder:
        pki, server = make_pki(Path(folder))
        try:
            config = Config(seal=Seal(pkcs12=pki.p12("agency"), password_file=pki.password_file,
                                      tsa_url=pki.tsa_url))
            print("| result | sealed as | median time | bytes added |")
            print("|---|---|---|---|")
            for label, data in (("1-page text PDF", text_pdf(["ใบอนุญาต"])),
                                ("3-page scan, 0.9 MB", scanned(3))):
                for how, password in (("B-LT (timestamp + OCSP)", None),
                                      ("AES-256 then B-LT", "Pa55word-x")):
                    took, added = measure(config, data, password, runs)
                    print(f"| {label} | {how} | {took * 1000:.0f} ms | {added:,} |")
            started = time.perf_counter()
            for _ in range(runs):
                results.protect([("r.pdf", "application/pdf", text_pdf(["x"]))], None, None)
            print(f"\nunsealed (as before): {(time.perf_counter() - started) / runs * 1000:.1f} ms"
                  f" per 1-page result; {runs} runs each")
        finally:
            server.shutdown()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
