#!/usr/bin/env python3
"""Give a built wheel a PEP 440 local version label, e.g. nb360-0.1.0 -> nb360-0.1.0+cu128.

CUDA builds of nb360 are tied to one CUDA major (``import nb360`` refuses a torch of another one), so
their wheels carry the CUDA version in the local label, the way torch's own wheels do (2.13.0+cu128).
scikit-build-core takes the version from pyproject.toml, so the label is added after the build: this
rewrites the METADATA version, renames the .dist-info directory and writes a fresh RECORD. Nothing
else in the wheel changes.

    python docker/retag_wheel.py --local cu128 -w OUT_DIR dist/nb360-0.1.0-cp312-cp312-manylinux_2_28_x86_64.whl
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import sys
import zipfile
from pathlib import Path

LOCAL_LABEL = re.compile(r"^[a-z0-9]+(?:\.[a-z0-9]+)*$")


class RetagError(Exception):
    """The wheel or the label cannot be retagged; the message says why."""


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def retag(wheel: Path, local: str, out_dir: Path) -> Path:
    """Write a copy of `wheel` whose version has the local label `local` into `out_dir`; return its path."""
    if not LOCAL_LABEL.match(local):
        raise RetagError(f"invalid local version label {local!r}: use lower-case letters, digits and dots, e.g. cu128")
    parts = wheel.name[: -len(".whl")].split("-") if wheel.name.endswith(".whl") else []
    if len(parts) not in (5, 6):
        raise RetagError(f"{wheel.name} is not a wheel file name (name-version[-build]-python-abi-platform.whl)")
    name, version, tags = parts[0], parts[1], parts[2:]
    if "+" in version:
        raise RetagError(f"{wheel.name} already has a local version ({version})")
    new_version = f"{version}+{local}"
    old_info, new_info = f"{name}-{version}.dist-info", f"{name}-{new_version}.dist-info"
    out = out_dir / ("-".join([name, new_version, *tags]) + ".whl")
    out_dir.mkdir(parents=True, exist_ok=True)

    with zipfile.ZipFile(wheel) as source:
        names = source.namelist()
        if f"{old_info}/METADATA" not in names:
            raise RetagError(f"{wheel.name} has no {old_info}/METADATA")
        records: list[str] = []
        tmp = out.with_suffix(".whl.tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                path = item.filename
                if path.startswith(old_info + "/"):
                    path = new_info + path[len(old_info):]
                if path == f"{new_info}/RECORD":
                    continue  # rewritten last, with the new hashes
                data = source.read(item)
                if path == f"{new_info}/METADATA":
                    data, count = re.subn(rb"^Version: .*$", f"Version: {new_version}".encode(), data,
                                          count=1, flags=re.MULTILINE)
                    if count != 1:
                        raise RetagError(f"{wheel.name}: METADATA has no Version line")
                entry = zipfile.ZipInfo(path, date_time=item.date_time)
                entry.external_attr = item.external_attr  # keeps the .so files' mode bits
                entry.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(entry, data)
                records.append(f"{path},{_record_hash(data)},{len(data)}")
            records.append(f"{new_info}/RECORD,,")
            target.writestr(f"{new_info}/RECORD", "\n".join(records) + "\n")
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: retag each wheel given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", required=True, help="the local version label, e.g. cu128, cu130 or cpu")
    parser.add_argument("-w", "--wheel-dir", type=Path, required=True, help="directory to write the retagged wheels to")
    parser.add_argument("wheels", nargs="+", type=Path, help="the wheels to retag")
    args = parser.parse_args(argv)
    try:
        for wheel in args.wheels:
            print(f"retag_wheel.py: wrote {retag(wheel, args.local, args.wheel_dir)}")
    except (RetagError, OSError, zipfile.BadZipFile) as exc:
        print(f"retag_wheel.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
