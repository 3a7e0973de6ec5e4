"""sha256 fingerprints of a task's data files, for provenance manifests (cached per file size and mtime)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..tasks import task_data_dir
from .._files import sha256_file as _sha256

CACHE_NAME = ".nb360-sha256.json"  # next to the data: {relative path: [size, mtime_ns, sha256]}



def fingerprint(task: str, root: str | os.PathLike[str]) -> dict[str, dict[str, object]]:
    """{relative path: {"bytes", "sha256"}} of every file in the task's data directory (hashes cached)."""
    root = Path(root).expanduser()
    directory = task_data_dir(root, task)
    cache_file = directory / CACHE_NAME
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    out: dict[str, dict[str, object]] = {}
    changed = False
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != CACHE_NAME
                       and not p.name.startswith(".")):
        rel = str(path.relative_to(directory))
        st = path.stat()
        hit = cache.get(rel)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            digest = hit[2]
        else:
            digest = _sha256(path)
            cache[rel] = [st.st_size, st.st_mtime_ns, digest]
            changed = True
        out[rel] = {"bytes": st.st_size, "sha256": digest}
    if changed:
        try:
            tmp = cache_file.with_name(f".{CACHE_NAME}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, cache_file)
        except OSError:  # a read-only data directory: hashes are simply not cached
            pass
    return out
