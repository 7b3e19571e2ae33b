#!/usr/bin/env python3
"""Baseline: a boto3 init script using BatchGetSecretValue (<= 20 ids a call).

Usage: boto3_batch.py OUT_DIR SECRET_ID...  Identity, region and endpoint come
from the environment, as in a pod.
"""
import os
import sys

import boto3


def main():
    out, ids = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    client = boto3.client("secretsmanager")
    for start in range(0, len(ids), 20):
        resp = client.batch_get_secret_value(SecretIdList=ids[start:start + 20])
        if resp.get("Errors"):
            codes = sorted({e.get("ErrorCode", "?") for e in resp["Errors"]})
            sys.exit(f"BatchGetSecretValue errors: {', '.join(codes)}")
        for s in resp["SecretValues"]:
            with open(os.path.join(out, os.path.basename(s["Name"])), "w") as f:
                f.write(s["SecretString"])


if __name__ == "__main__":
    main()
