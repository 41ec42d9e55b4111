"""``bigarrays verify``: every bad chunk named with its error; leftovers; exit statuses."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import numpy as np

import bigarrays_core as bc


def _dataset(tmp_path: Path, compression: str | None = "gzip") -> tuple[str, bc.BigArray]:
    url = str(tmp_path / "ds")
    ba = bc.create(url, dtype="uint16", size=(64, 64, 16), chunk_size=(32, 32, 16), compression=compression,
                   resolution=(4, 4, 40), num_mips=2)
    ba[:, :, :] = np.random.default_rng(1).integers(0, 999, size=(64, 64, 16), dtype=np.uint16)
    return url, ba


def test_a_clean_dataset_passes(cli, tmp_path: Path) -> None:
    url, _ = _dataset(tmp_path)
    r = cli("verify", url, "--quiet")
    assert r.code == 0, r.err
    assert r.out == "" and "4 stored chunk(s) of 4" in r.err and "0 bad" in r.err
    r = cli("verify", url, "--mip", "1", "--quiet")  # nothing stored there: nothing wrong either
    assert r.code == 0 and "0 stored chunk(s) of 1" in r.err


def test_every_bad_chunk_is_named_with_its_error(cli, tmp_path: Path) -> None:
    url, ba = _dataset(tmp_path)
    scale = tmp_path / "ds" / ba.key
    (scale / "0-32_0-32_0-16.gz").write_bytes(b"\x1f\x8b\x08\x00 torn gzip")
    good = gzip.decompress((scale / "32-64_32-64_0-16.gz").read_bytes())
    (scale / "32-64_32-64_0-16.gz").write_bytes(gzip.compress(good[:-2]))  # decodes, but 2 bytes short
    r = cli("verify", url, "--quiet")
    assert r.code == 3
    lines = r.out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == [f"bad {ba.key}/0-32_0-32_0-16", f"bad {ba.key}/32-64_32-64_0-16"]
    assert "2 bad" in r.err
    r = cli("verify", url, "32:64,0:32,0:16", "--quiet")  # a region without them
    assert r.code == 0 and r.out == "" and "1 stored chunk(s) of 1" in r.err
    r = cli("verify", url, "0:1,0:1,0:1", "--fix", "--quiet")  # --fix never touches chunks
    assert r.code == 3 and (scale / "0-32_0-32_0-16.gz").read_bytes() == b"\x1f\x8b\x08\x00 torn gzip"


def test_leftovers_are_listed_and_only_stale_ones_removed(cli, tmp_path: Path) -> None:
    url, ba = _dataset(tmp_path, compression=None)
    fresh = tmp_path / "ds" / ba.key / ".bigarrays-tmp-fresh"
    old = tmp_path / "ds" / ".bigarrays-tmp-old"  # beside the info
    fresh.write_bytes(b"half")
    old.write_bytes(b"{")
    then = time.time() - 7200
    os.utime(old, (then, then))
    r = cli("verify", url, "--quiet")
    assert r.code == 3
    assert f"leftover {ba.key}/.bigarrays-tmp-fresh" in r.out and "left alone" in r.out
    assert "leftover .bigarrays-tmp-old (2.0 h old, stale)" in r.out
    r = cli("verify", url, "--fix", "--stale-after", "60", "--quiet")
    assert r.code == 0 and "(2.0 h old, removed)" in r.out and "1 removed" in r.err
    assert fresh.exists() and not old.exists()
    r = cli("verify", url, "--fix", "--stale-after", "0", "--quiet")
    assert r.code == 0 and not fresh.exists()


def test_verify_errors_are_one_line(cli, tmp_path: Path) -> None:
    r = cli("verify", str(tmp_path / "none"))
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and "no dataset" in r.err
    url, _ = _dataset(tmp_path)
    r = cli("verify", url, "0:8,0:8", "--quiet")
    assert r.code == 1 and "bad bbox" in r.err
    r = cli("verify", url, "--stale-after", "-1")
    assert r.code == 1 and "--stale-after" in r.err


def test_memory_datasets_have_no_leftovers(cli) -> None:
    ba = bc.create("memory://verify-test", dtype="uint8", size=(16, 16, 16), chunk_size=(8, 8, 8), overwrite=True)
    ba[0:8, 0:8, 0:8] = 1
    r = cli("verify", "memory://verify-test", "--fix", "--quiet")
    assert r.code == 0 and "1 stored chunk(s) of 8" in r.err and "0 leftover" in r.err


def test_a_junk_gz_file_of_the_raw_size_is_bad(cli, tmp_path: Path) -> None:
    """The ``.gz`` suffix records gzip: junk of exactly the raw chunk's size is not a raw chunk
    (verify used to decode it as raw and call it fine, while every read failed)."""
    url, ba = _dataset(tmp_path, compression=None)
    scale = tmp_path / "ds" / ba.key
    (scale / "0-32_0-32_0-16").unlink()
    (scale / "0-32_0-32_0-16.gz").write_bytes(bytes(32 * 32 * 16 * 2))
    r = cli("verify", url, "--quiet")
    assert r.code == 3 and "0-32_0-32_0-16" in r.out, (r.out, r.err)


def test_sharded_chunks_are_verified(cli, tmp_path: Path) -> None:
    url = str(tmp_path / "sh")
    ba = bc.create(url, dtype="uint8", size=(64, 64, 32), chunk_size=(32, 32, 16), sharding=True)
    ba[:, :, :] = 3
    r = cli("verify", url, "--quiet")
    assert r.code == 0 and "8 stored chunk(s) of 8" in r.err, (r.out, r.err)
