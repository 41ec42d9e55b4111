"""BigArray behaviour: a port of BigArrays.jl's test suite plus the bugs found in it.

The BigArrays.jl fixture has two scales with negative offsets and edge chunks much
smaller than a full chunk; the second scale is *not* a x2 downsample of the first, so
its info is written by hand.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from typing import Any

import numpy as np
import pytest

import bigarrays_core as bc
from bigarrays_core.format import Info, write_info
from bigarrays_core.geometry import Box
from bigarrays_core.kvstore import LocalStore, MemoryStore, open_store

from .datasets import files_under, local_root, make, random_data, snapshot

JL_INFO: dict[str, Any] = {
    "@type": "neuroglancer_multiscale_volume",
    "type": "image",
    "data_type": "uint8",
    "num_channels": 1,
    "scales": [
        {"key": "4_4_40", "size": [510, 510, 2022], "voxel_offset": [-300, -300, -10], "resolution": [4, 4, 40],
         "chunk_sizes": [[100, 100, 5]], "encoding": "raw"},
        {"key": "8_8_40", "size": [12286, 11262, 2046], "voxel_offset": [-597, -597, -103], "resolution": [8, 8, 40],
         "chunk_sizes": [[100, 100, 5]], "encoding": "raw"},
    ],
}


class Model:
    """A numpy reference of a window of a volume: writes clip to the bounds, reads outside give 0."""

    def __init__(self, window: Box, bounds: Box, dtype: Any, channels: int = 1) -> None:
        self.window = window
        self.bounds = bounds
        self.data = np.zeros(window.shape + (channels,), dtype=dtype)

    def write(self, box: Box, data: np.ndarray) -> None:
        inner = box.intersect(self.bounds)
        if inner.is_empty:
            return
        assert self.window.contains(inner)
        self.data[inner.slices_in(self.window)] = data[inner.slices_in(box)]

    def read(self, box: Box) -> np.ndarray:
        assert self.window.contains(box)
        return self.data[box.slices_in(self.window)]


@pytest.fixture
def jl(dataset_url: str) -> bc.BigArray:
    """BigArrays.jl's two-scale uint8 fixture, mip 0."""
    write_info(open_store(dataset_url), Info(JL_INFO))
    return bc.open(dataset_url)


def jl_model(ba: bc.BigArray) -> Model:
    """A model of mip 0 for z in [-60, 40), x and y 50 voxels beyond the bounds."""
    return Model(Box((-350, -350, -60), (260, 260, 40)), ba.bounds, np.uint8)


# -- the fixture ---------------------------------------------------------------------------


def test_jl_fixture_describes_itself(jl: bc.BigArray) -> None:
    assert jl.shape == (510, 510, 2022, 1)
    assert jl.voxel_offset == (-300, -300, -10)
    assert jl.bounds == Box((-300, -300, -10), (210, 210, 2012))
    assert jl.chunk_size == (100, 100, 5)
    assert jl.dtype == np.uint8
    assert jl.mip == 0 and jl.num_mips == 2
    assert jl.key == "4_4_40"
    assert jl.resolution == (4.0, 4.0, 40.0)
    assert jl.encoding == "raw" and jl.compression is None
    assert jl.num_channels == 1
    assert jl.info == JL_INFO
    m1 = jl.at_mip(1)
    assert m1.mip == 1
    assert m1.shape == (12286, 11262, 2046, 1)
    assert m1.voxel_offset == (-597, -597, -103)
    assert m1.key == "8_8_40"
    assert m1.at_mip(0).bounds == jl.bounds
    with pytest.raises(bc.InfoError, match="mip 2"):
        jl.at_mip(2)
    assert bc.open(jl.url, mip=1).shape == m1.shape
    assert "4_4_40" not in repr(m1) and "mip=1" in repr(m1)


def test_aligned_round_trips_at_both_scales(jl: bc.BigArray, rng: np.random.Generator) -> None:
    box0 = Box((-300, -200, -10), (-100, 0, 5))
    data0 = random_data(rng, box0)
    jl[-300:-100, -200:0, -10:5] = data0
    box1 = Box((-497, -597, -103), (-297, -397, -93))
    data1 = random_data(rng, box1)
    m1 = jl.at_mip(1)
    m1[-497:-297, -597:-397, -103:-93] = data1
    again = bc.open(jl.url)
    np.testing.assert_array_equal(again[-300:-100, -200:0, -10:5], data0)
    np.testing.assert_array_equal(again.at_mip(1)[-497:-297, -597:-397, -103:-93], data1)
    np.testing.assert_array_equal(m1.read(box1.to_colon()), data1)
    # The scales are independent: mip 1 has nothing where mip 0 was written.
    assert (again.at_mip(1)[-300:-100, -200:0, -10:5] == 0).all()
    assert sorted(k for k in jl.store.list() if k != "info") == sorted(
        [f"4_4_40/{x}-{x + 100}_{y}-{y + 100}_{z}-{z + 5}" for x in (-300, -200) for y in (-200, -100)
         for z in (-10, -5, 0)]
        + [f"8_8_40/{x}-{x + 100}_{y}-{y + 100}_{z}-{z + 5}" for x in (-497, -397) for y in (-597, -497)
           for z in (-103, -98)]
    )


def test_negative_coordinates_spanning_zero(jl: bc.BigArray, rng: np.random.Generator) -> None:
    model = jl_model(jl)
    box = Box((-100, -200, -10), (100, 100, 5))
    data = random_data(rng, box)
    jl.write(box, data)
    model.write(box, data)
    for sub in ["-7:9,-1:1,-10:5", "-100:100,-200:100,-10:5", "-1:0,-1:0,-1:0", "0:1,0:1,0:1", "-150:-50,50:150,3:7"]:
        b = Box.parse(sub)
        np.testing.assert_array_equal(jl.read(b), model.read(b), err_msg=sub)
    np.testing.assert_array_equal(jl[-1:1, -1:1, 0], model.read(Box((-1, -1, 0), (1, 1, 1)))[:, :, 0])


def test_write_crossing_the_volume_end_keeps_only_the_inside(jl: bc.BigArray, rng: np.random.Generator) -> None:
    box = Box((200, 100, 2005), (300, 200, 2015))  # x beyond 210, z beyond 2012
    data = random_data(rng, box)
    jl[200:300, 100:200, 2005:2015] = data
    stored = sorted(k for k in jl.store.list() if k != "info")
    assert stored == ["4_4_40/200-210_100-200_2005-2010", "4_4_40/200-210_100-200_2010-2012"]
    assert len(jl.store.get(stored[0]) or b"") == 10 * 100 * 5
    assert len(jl.store.get(stored[1]) or b"") == 10 * 100 * 2
    out = jl[200:300, 100:200, 2005:2015]
    np.testing.assert_array_equal(out[:10, :, :7], data[:10, :, :7])
    assert (out[10:] == 0).all() and (out[:, :, 7:] == 0).all()
    # The stored edge chunk is exactly the clipped voxels, in Fortran order.
    np.testing.assert_array_equal(
        np.frombuffer(jl.store.get(stored[0]) or b"", np.uint8).reshape((10, 100, 5), order="F"),
        data[:10, :, :5, 0],
    )


def test_crossing_writes_on_disk(local_url: str, rng: np.random.Generator) -> None:
    write_info(LocalStore(local_url), Info(JL_INFO))
    ba = bc.open(local_url)
    data = random_data(rng, Box((-400, 200, -15), (-200, 300, 0)))
    ba[-400:-200, 200:300, -15:0] = data  # below the lower x/z bound and above the upper y bound
    files = files_under(local_root(local_url))
    chunk_files = sorted(f for f in files if f != "info")
    assert chunk_files == [
        os.path.join("4_4_40", "-300--200_200-210_-10--5"),
        os.path.join("4_4_40", "-300--200_200-210_-5-0"),
    ]
    assert [len(files[f]) for f in chunk_files] == [100 * 10 * 5, 100 * 10 * 5]
    np.testing.assert_array_equal(ba[-300:-200, 200:210, -10:0], data[100:, :10, 5:])


def test_cutout_whose_last_chunk_overlaps_by_one_voxel(jl: bc.BigArray, rng: np.random.Generator) -> None:
    model = jl_model(jl)
    box = Box((-300, -300, -10), (0, 0, 5))
    data = random_data(rng, box)
    jl.write(box, data)
    model.write(box, data)
    for b in [Box((-300, -300, -10), (-199, -199, -4)), Box((-201, -101, -6), (-99, 1, 1)),
              Box((-1, -1, 4), (1, 1, 6)), Box((199, 199, 2011), (211, 211, 2013))]:
        np.testing.assert_array_equal(jl.read(b), model.read(b) if model.window.contains(b) else 0, err_msg=str(b))
    refs = jl.chunks(Box((-300, -300, -10), (-199, -299, -9)))
    assert [r.box for r in refs] == [Box((-300, -300, -10), (-200, -200, -5)), Box((-200, -300, -10), (-100, -200, -5))]


def test_missing_chunk_in_the_middle_reads_as_zeros_only_there(dataset_url: str, rng: np.random.Generator) -> None:
    write_info(open_store(dataset_url), Info(JL_INFO))
    ba = bc.open(dataset_url)
    box = Box((-300, -300, -10), (0, -100, -5))
    data = random_data(rng, box, np.uint8) | np.uint8(1)  # never 0, so a zero means "filled"
    ba.write(box, data)
    missing = "4_4_40/-200--100_-300--200_-10--5"
    ba.store.delete(missing)
    out = ba.read(box)
    assert (out[100:200, 0:100] == 0).all()
    expected = data.copy()
    expected[100:200, 0:100] = 0
    np.testing.assert_array_equal(out, expected)
    assert [r.key for r in ba.missing_chunks(box)] == [missing]
    strict = bc.open(dataset_url, fill_missing=False)
    with pytest.raises(bc.ChunkNotFoundError) as info:
        strict.read(box)
    assert info.value.key == missing
    assert ba.store.describe(missing) in str(info.value)
    assert isinstance(info.value, KeyError)
    np.testing.assert_array_equal(strict.read(Box((-300, -300, -10), (-200, -100, -5))), data[:100])


# -- alignment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("box", "nearest"),
    [
        (Box((-250, -300, -10), (-100, -200, -5)), Box((-300, -300, -10), (-100, -200, -5))),
        (Box((-300, -300, -10), (-101, -200, -5)), Box((-300, -300, -10), (-100, -200, -5))),
        (Box((0, 0, 1), (100, 100, 5)), Box((0, 0, 0), (100, 100, 5))),
        (Box((-1, 0, 0), (1, 1, 1)), Box((-100, 0, 0), (100, 100, 5))),
        (Box((205, 0, 0), (300, 100, 5)), Box((200, 0, 0), (210, 100, 5))),  # unaligned after clipping
        (Box((100, 0, 2000), (210, 100, 2011)), Box((100, 0, 2000), (210, 100, 2012))),
    ],
)
def test_unaligned_write_names_the_nearest_box_and_writes_nothing(jl: bc.BigArray, box: Box, nearest: Box,
                                                                  rng: np.random.Generator) -> None:
    jl[-300:-100, -300:-100, -10:5] = random_data(rng, Box((-300, -300, -10), (-100, -100, 5)))
    before = snapshot(jl.store)
    with pytest.raises(bc.AlignmentError) as info:
        jl.write(box, random_data(rng, box))
    err = info.value
    assert isinstance(err, ValueError)
    assert err.nearest == nearest
    assert str(nearest) in str(err)
    assert "non_aligned_writes" in str(err)
    assert snapshot(jl.store) == before
    with pytest.raises(bc.AlignmentError):
        jl[box.start[0]:box.stop[0], box.start[1]:box.stop[1], box.start[2]:box.stop[2]] = 1
    assert snapshot(jl.store) == before


def test_unaligned_write_leaves_files_untouched(local_url: str, rng: np.random.Generator) -> None:
    ba = make(local_url, size=(64, 64, 64), chunk_size=(16, 16, 16))
    ba[0:32, 0:32, 0:16] = random_data(rng, Box((0, 0, 0), (32, 32, 16)))
    before = files_under(local_root(local_url))
    with pytest.raises(bc.AlignmentError):
        ba[8:40, 0:32, 0:16] = random_data(rng, Box((8, 0, 0), (40, 32, 16)))
    assert files_under(local_root(local_url)) == before


def test_non_aligned_writes_match_a_numpy_model(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, dtype="uint16", size=(45, 40, 23), voxel_offset=(-20, -3, 7), chunk_size=(16, 8, 8),
              num_channels=2, non_aligned_writes=True)
    model = Model(Box((-30, -13, -3), (35, 47, 40)), ba.bounds, np.uint16, channels=2)
    for _ in range(25):
        start = [int(rng.integers(lo - 5, hi)) for lo, hi in zip(ba.bounds.start, ba.bounds.stop, strict=True)]
        stop = [min(s + int(rng.integers(1, 20)), hi + 5) for s, hi in zip(start, ba.bounds.stop, strict=True)]
        box = Box(tuple(start), tuple(stop))  # type: ignore[arg-type]
        data = random_data(rng, box, np.uint16, 2)
        if box.intersect(ba.bounds).is_empty:  # a write wholly outside is refused
            with pytest.raises(bc.OutOfBoundsError, match="wholly outside"):
                ba.write(box, data)
        elif rng.random() < 0.3:  # one channel only
            c = int(rng.integers(0, 2))
            ba[box.start[0]:box.stop[0], box.start[1]:box.stop[1], box.start[2]:box.stop[2], c] = data[..., 0]
            inner = box.intersect(ba.bounds)
            model.data[inner.slices_in(model.window) + (c,)] = data[inner.slices_in(box) + (0,)]
        else:
            ba.write(box, data)
            model.write(box, data)
        np.testing.assert_array_equal(ba.read(model.window), model.data)
    np.testing.assert_array_equal(bc.open(dataset_url).read(model.window), model.data)


def test_concurrent_read_modify_writes_to_one_chunk_lose_nothing(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint8", size=(32, 32, 32), chunk_size=(32, 32, 32), non_aligned_writes=True)
    threads_n, rounds = 8, 32
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            barrier.wait()
            for r in range(rounds):
                ba[i, r, 0:32] = i * 16 + r + 1  # each thread owns column x == i
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    out = bc.open(dataset_url)[:, :, :, 0]
    expected = np.zeros((32, 32, 32), dtype=np.uint8)
    for i in range(threads_n):
        for r in range(rounds):
            expected[i, r, :] = i * 16 + r + 1
    np.testing.assert_array_equal(out, expected)


# -- outside the bounds ----------------------------------------------------------------------


@pytest.mark.parametrize("box", [Box((210, 0, 0), (310, 100, 5)), Box((-400, -400, -15), (-300, -300, -10)),
                                 Box((0, 0, 2012), (100, 100, 2017)), Box((1000, 1000, 1000), (1001, 1001, 1001))])
def test_writes_wholly_outside_are_refused(jl: bc.BigArray, box: Box, rng: np.random.Generator) -> None:
    """A write that would store nothing is a typo: an OutOfBoundsError naming the box and
    the bounds, bounded or not (a write partly outside stays clipped)."""
    before = snapshot(jl.store)
    (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
    for ba in (jl, bc.open(jl.url, bounded=True)):
        for how in ("write", "setitem"):
            with pytest.raises(bc.OutOfBoundsError) as info:
                if how == "write":
                    ba.write(box, random_data(rng, box))
                else:
                    ba[x0:x1, y0:y1, z0:z1] = 7
            assert str(box) in str(info.value) and str(jl.bounds) in str(info.value)
            assert isinstance(info.value, IndexError)
    assert snapshot(jl.store) == before
    jl[5:5, 0:10, 0:10] = 1  # an empty selection is no typo: it writes nothing, as in numpy
    assert snapshot(jl.store) == before


def test_bounded_refuses_writes_crossing_the_edge(jl: bc.BigArray, rng: np.random.Generator) -> None:
    bounded = bc.open(jl.url, bounded=True)
    before = snapshot(jl.store)
    box = Box((200, 100, 2005), (300, 200, 2015))
    with pytest.raises(bc.OutOfBoundsError):
        bounded.write(box, random_data(rng, box))
    assert snapshot(jl.store) == before
    bounded[200:210, 100:200, 2005:2012] = 3  # the in-bounds part is fine
    assert (jl[200:210, 100:200, 2005:2012] == 3).all()


def test_reads_outside(jl: bc.BigArray, rng: np.random.Generator) -> None:
    jl[-300:-200, -300:-200, -10:-5] = 9
    out = jl[-310:-290, -305:-295, -12:-8]
    assert out.shape == (20, 10, 4, 1)
    assert (out[:10] == 0).all() and (out[:, :5] == 0).all() and (out[:, :, :2] == 0).all()
    assert (out[10:, 5:, 2:] == 9).all()
    assert (jl[1000:1010, 0:4, 0:1] == 0).all()
    assert jl[-5000, -5000, -5000].tolist() == [0]
    bounded = bc.open(jl.url, bounded=True)
    for key in [(slice(-310, -290), slice(-305, -295), slice(-12, -8)), (slice(1000, 1010), 0, 0),
                (210, 0, 0), (0, 0, -11)]:
        with pytest.raises(bc.OutOfBoundsError):
            bounded[key]
    np.testing.assert_array_equal(bounded[-300:-290, -300:-295, -10:-8], jl[-300:-290, -300:-295, -10:-8])
    assert bounded[209, 209, 2011].shape == (1,)


def test_integer_indexing(jl: bc.BigArray, rng: np.random.Generator) -> None:
    box = Box((-100, -100, 0), (100, 100, 5))
    data = random_data(rng, box)
    jl.write(box, data)
    np.testing.assert_array_equal(jl[5, -100:100, 0:5], data[105, :, :, :])
    np.testing.assert_array_equal(jl[-100:100, -1, 3], data[:, 99, 3, :])
    assert jl[-100, -100, 0, 0] == data[0, 0, 0, 0]
    assert jl[99, 99, 4].tolist() == data[199, 199, 4].tolist()


# -- stores, keys, datasets --------------------------------------------------------------------


def test_read_only_store_refuses_writes(dataset_url: str) -> None:
    ba = make(dataset_url, dtype="uint8", size=(16, 16, 8), chunk_size=(8, 8, 8))
    ba[0:8, 0:8, 0:8] = 4
    before = snapshot(ba.store)
    ro = bc.open(dataset_url, read_only=True)
    assert ro.store.read_only
    with pytest.raises(bc.ReadOnlyError) as info:
        ro[0:8, 0:8, 0:8] = 5
    assert isinstance(info.value, PermissionError) and isinstance(info.value, bc.StorageError)
    assert dataset_url.rstrip("/").split("://")[1] in str(info.value)
    with pytest.raises(bc.ReadOnlyError):
        ro.write("8:16,0:8,0:8", np.ones((8, 8, 8), np.uint8))
    with pytest.raises(bc.ReadOnlyError):
        ro.store.set("x", b"1")
    with pytest.raises(bc.ReadOnlyError):
        ro.store.delete(f"{ro.key}/0-8_0-8_0-8")
    with pytest.raises(bc.ReadOnlyError):
        bc.create(dataset_url, dtype="uint8", size=(8, 8, 8), overwrite=True, read_only=True)
    assert snapshot(ba.store) == before
    assert (ro[0:8, 0:8, 0:8] == 4).all()


def test_scale_key_with_dotdot_is_refused(tmp_path: Any) -> None:
    raw = copy.deepcopy(JL_INFO)
    raw["scales"] = [dict(raw["scales"][0], key="../escape")]
    store = LocalStore(str(tmp_path / "ds"))
    store.set("info", json.dumps(raw).encode())
    with pytest.raises(bc.InfoError) as info:
        bc.open(str(tmp_path / "ds"))
    assert info.value.field == "info.scales[0].key"
    assert "'../escape'" in str(info.value)
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("store_kind", ["local", "memory"])
@pytest.mark.parametrize("key", ["../x", "/etc/x", "a/../../x", "a//b", "./x", "a\\..\\x", "", "a/\x00"])
def test_store_keys_cannot_escape(tmp_path: Any, store_kind: str, key: str) -> None:
    root = tmp_path / "root"
    store = LocalStore(str(root)) if store_kind == "local" else MemoryStore()
    before = sorted(p.name for p in tmp_path.iterdir())
    for call in (lambda: store.get(key), lambda: store.set(key, b"x"), lambda: store.exists(key),
                 lambda: store.delete(key)):
        with pytest.raises(bc.InvalidKeyError) as info:
            call()
        assert repr(key) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not os.path.exists("/etc/x") or store_kind == "memory"


def test_chunks_and_missing_chunks(jl: bc.BigArray) -> None:
    box = Box((150, -300, 2008), (300, -150, 2100))
    refs = jl.chunks(box)
    assert [r.key for r in refs] == [
        "4_4_40/100-200_-300--200_2005-2010", "4_4_40/200-210_-300--200_2005-2010",
        "4_4_40/100-200_-200--100_2005-2010", "4_4_40/200-210_-200--100_2005-2010",
        "4_4_40/100-200_-300--200_2010-2012", "4_4_40/200-210_-300--200_2010-2012",
        "4_4_40/100-200_-200--100_2010-2012", "4_4_40/200-210_-200--100_2010-2012",
    ]
    assert refs[1].grid == (5, 0, 403)
    assert refs[1].box == Box((200, -300, 2005), (210, -200, 2010))
    assert refs[1].name == "200-210_-300--200_2005-2010"
    assert [r.key for r in jl.chunks("150:300,-300:-150,2008:2100")] == [r.key for r in refs]
    assert jl.missing_chunks(box) == refs
    jl[100:210, -300:-200, 2005:2012] = 1
    assert [r.key for r in jl.missing_chunks(box)] == [r.key for r in refs if "-200--100" in r.key]
    assert jl.chunks(Box((300, 300, 0), (400, 400, 5))) == []
    assert len(jl.chunks()) == 6 * 6 * 405


def test_dataset_not_found(tmp_path: Any) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for url in (str(empty), f"file://{empty}", str(tmp_path / "nowhere"), "memory://core-tests-nothing-here"):
        with pytest.raises(bc.DatasetNotFoundError) as info:
            bc.open(url)
        assert isinstance(info.value, FileNotFoundError)
        assert "info" in str(info.value)
    assert list(empty.iterdir()) == []
    assert not (tmp_path / "nowhere").exists()


def test_create_over_an_existing_dataset(dataset_url: str, rng: np.random.Generator) -> None:
    ba = make(dataset_url, dtype="uint8", size=(16, 16, 8), chunk_size=(8, 8, 8))
    ba[0:8, 0:8, 0:8] = 3
    before = snapshot(ba.store)
    with pytest.raises(bc.DatasetExistsError) as info:
        make(dataset_url, dtype="uint16", size=(32, 32, 32))
    assert isinstance(info.value, FileExistsError)
    assert "overwrite=True" in str(info.value)
    assert snapshot(ba.store) == before
    again = make(dataset_url, dtype="uint16", size=(32, 32, 32), chunk_size=(16, 16, 16), overwrite=True)
    assert bc.open(dataset_url).dtype == np.uint16 and again.shape == (32, 32, 32, 1)


def test_create_with_bad_arguments_writes_nothing(dataset_url: str) -> None:
    store = open_store(dataset_url)
    with pytest.raises(bc.InfoError):
        bc.create(store, dtype="uint16", size=(8, 8, 8), encoding="jpeg")
    with pytest.raises(bc.InfoError):
        bc.create(store, dtype="complex64", size=(8, 8, 8))
    assert list(store.list()) == []
    assert not store.exists("info")


def test_create_round_trips_through_both_url_spellings(tmp_path: Any, rng: np.random.Generator) -> None:
    path = str(tmp_path / "plain")
    ba = make(path, dtype="uint8", size=(16, 16, 16), chunk_size=(16, 16, 16))
    data = random_data(rng, ba.bounds)
    ba[:, :, :] = data
    np.testing.assert_array_equal(bc.open(f"file://{path}")[:, :, :], data)
    assert bc.open(path).url == f"file://{path}"


def test_nested_scale_keys(dataset_url: str, rng: np.random.Generator) -> None:
    raw = copy.deepcopy(JL_INFO)
    raw["scales"][0]["key"] = "mips/4_4_40/"  # a relative path; the trailing slash is not part of it
    write_info(open_store(dataset_url), Info(raw))
    ba = bc.open(dataset_url)
    assert ba.key == "mips/4_4_40"
    data = random_data(rng, Box((-300, -300, -10), (-200, -200, -5)))
    ba[-300:-200, -300:-200, -10:-5] = data
    assert [k for k in ba.store.list() if k != "info"] == ["mips/4_4_40/-300--200_-300--200_-10--5"]
    np.testing.assert_array_equal(bc.open(dataset_url)[-300:-200, -300:-200, -10:-5], data)
    assert bc.open(dataset_url).info["scales"][0]["key"] == "mips/4_4_40/"
