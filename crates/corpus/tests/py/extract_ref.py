"""Reference extractors for seekmath's extraction benchmark: trafilatura and resiliparse, single-threaded.

Usage: extract_ref.py FILE_LIST OUT_JSONL
FILE_LIST has one gzip-compressed HTML path per line. Writes one JSON object per page with each system's text,
then a final {"timing": {system: seconds}, "cpu_timing": {system: CPU seconds}} line (extraction calls only,
decoding excluded; CPU seconds of this thread, which stay meaningful on a loaded machine).
"""
import gzip
import json
import sys
import time

import trafilatura
from resiliparse.extract.html2text import extract_plain_text


def main():
    paths = [p.strip() for p in open(sys.argv[1], encoding="utf-8") if p.strip()]
    pages = []
    for p in paths:
        raw = gzip.open(p).read()
        pages.append(raw.decode("utf-8", errors="replace"))
    timing = {}
    cpu_timing = {}
    outputs = {"trafilatura": [], "resiliparse": []}
    start, cpu = time.perf_counter(), time.thread_time()
    for html in pages:
        outputs["trafilatura"].append(trafilatura.extract(html) or "")
    timing["trafilatura"] = time.perf_counter() - start
    cpu_timing["trafilatura"] = time.thread_time() - cpu
    start, cpu = time.perf_counter(), time.thread_time()
    for html in pages:
        outputs["resiliparse"].append(extract_plain_text(html, main_content=True) or "")
    timing["resiliparse"] = time.perf_counter() - start
    cpu_timing["resiliparse"] = time.thread_time() - cpu
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        for i, p in enumerate(paths):
            out.write(json.dumps({"file": p, "trafilatura": outputs["trafilatura"][i], "resiliparse": outputs["resiliparse"][i]}) + "\n")
        out.write(json.dumps({"timing": timing, "cpu_timing": cpu_timing, "pages": len(pages)}) + "\n")


if __name__ == "__main__":
    main()
