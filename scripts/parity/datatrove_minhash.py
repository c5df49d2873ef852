#!/usr/bin/env python3
"""Run datatrove's MinHash dedup (signatures -> buckets -> clusters) on one JSONL file, single worker.

Used by seekmath-corpus's parity test and dedup benchmark. Prints one JSON object on stdout:
{"clusters": [[doc_id, ...], ...] (clusters of 2+ docs), "seconds": {"signatures": s, "buckets": s, "clusters": s},
 "documents": n}.

The English default of datatrove tokenises words with spaCy; after simplify_text (punctuation already turned into
spaces) that is a whitespace split, so a whitespace WordTokenizer is used (and is faster, favouring datatrove).
"""
import argparse
import json
import os
import struct
import sys
import tempfile
import time

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer


class WhitespaceTokenizer(WordTokenizer):
    def word_tokenize(self, text):
        return text.split()

    def sent_tokenize(self, text):
        return [text]

    def span_tokenize(self, text):
        raise NotImplementedError


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--bands", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    config = MinhashConfig(
        hash_config=HashConfig(precision=64, hash_fc="sha1"),  # datatrove 0.10 passes str to xxhash and fails
        n_grams=args.ngram,
        num_buckets=args.bands,
        hashes_per_bucket=args.rows,
        seed=args.seed,
    )
    work = tempfile.mkdtemp(prefix="dt-minhash-")
    in_dir = os.path.dirname(os.path.abspath(args.input))
    name = os.path.basename(args.input)
    sigs, buckets, removed = (os.path.join(work, d) for d in ("sigs", "buckets", "remove"))
    quiet = dict(logging_dir=os.path.join(work, "logs"), skip_completed=False)
    seconds = {}

    t = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(in_dir, glob_pattern=name, id_key="id"),
            MinhashDedupSignature(output_folder=sigs, config=config, language=WhitespaceTokenizer()),
        ],
        tasks=1,
        workers=1,
        **quiet,
    ).run()
    seconds["signatures"] = time.perf_counter() - t
    t = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(input_folder=sigs, output_folder=buckets, config=config)],
        tasks=config.num_buckets,
        workers=1,
        **quiet,
    ).run()
    seconds["buckets"] = time.perf_counter() - t
    t = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(input_folder=buckets, output_folder=removed, config=config, save_cluster_id=True)],
        tasks=1,
        workers=1,
        **quiet,
    ).run()
    seconds["clusters"] = time.perf_counter() - t

    ids = [json.loads(line)["id"] for line in open(args.input, encoding="utf-8")]
    clusters = {}
    path = os.path.join(removed, "000000.clusters")
    if os.path.exists(path):
        data = open(path, "rb").read()
        for doc, cluster in struct.iter_unpack("<II", data):
            clusters.setdefault(cluster, []).append(ids[doc])
    out = [sorted(m) for m in clusters.values() if len(m) > 1]
    out.sort()
    json.dump({"clusters": out, "seconds": seconds, "documents": len(ids)}, sys.stdout)


if __name__ == "__main__":
    main()
