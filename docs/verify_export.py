"""Verify a Tillit audit archive on its own, without Tillit.

Usage: python3 verify_export.py ARCHIVE_DIR [PUBLIC_KEY_HEX]
Needs Python 3.11+ and the `cryptography` package. Give the public key you
were handed out of band (the admin's checkpoint page) to check who signed.
Exit status 0 and "OK" when the archive verifies; 1 and the first problem if not.
"""

import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def canonical(value):
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def verify(directory, trusted_key=None):
    folder = Path(directory)
    for line in (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:
            return f"{name}: SHA-256 differs from SHA256SUMS"
    info = json.loads((folder / "archive.json").read_text(encoding="utf-8"))
    checkpoint = json.loads((folder / "checkpoint.json").read_text(encoding="utf-8"))

    key = checkpoint["public_key"]
    if trusted_key is not None and key != trusted_key.lower():
        return "the checkpoint was signed by another key than the one you trust"
    if hashlib.sha256(bytes.fromhex(key)).hexdigest() != checkpoint["key_id"]:
        return "key_id is not SHA-256 of the public key"
    signed = canonical({name: checkpoint[name] for name in ("seq", "hash", "created_at", "key_id")})
    try:
        public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key))
        public_key.verify(bytes.fromhex(checkpoint["signature"]), signed)
    except Exception:
        return "bad checkpoint signature"

    seq, previous = info["first_seq"], info["prev_hash"]
    for name in ("events.jsonl", "anchor.jsonl"):
        with (folder / name).open(encoding="utf-8") as lines:
            for line in lines:
                event = json.loads(line)
                stored = event.pop("hash")
                if event["seq"] != seq:
                    return f"#{seq}: missing (found #{event['seq']})"
                if event["prev_hash"] != previous:
                    return f"#{seq}: prev_hash is not the previous event's hash"
                if hashlib.sha256(canonical(event)).hexdigest() != stored:
                    return f"#{seq}: hash mismatch"
                seq, previous = seq + 1, stored
        if name == "events.jsonl" and seq - 1 != info["last_seq"]:
            return f"events.jsonl ends at #{seq - 1}, not #{info['last_seq']}"
    if (seq - 1, previous) != (checkpoint["seq"], checkpoint["hash"]):
        return "the events do not lead to the signed checkpoint"
    return None


if __name__ == "__main__":
    problem = verify(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    if problem:
        print(f"FAILED: {problem}")
        sys.exit(1)
    print("OK: every event hashes, links and leads to the signed checkpoint")
