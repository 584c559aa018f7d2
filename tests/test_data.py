"""d2lcore.data: the IDX parser, how FashionMNIST is found and verified, the real dataset,
synthetic regression data, and the Batches iterator. Nothing here touches the network: every
test points the download mirror at a local folder (file://) or at nothing."""
import gzip
import hashlib
import math
from pathlib import Path

import pytest
import torch

import d2lcore.data.fashion_mnist as fm
from d2lcore.data import (Batches, DataError, DatasetNotFoundError, DataWarning, FashionMNIST, IDXError,
                          SyntheticRegression, image_grid, parse_idx, write_idx)
from d2lcore.data.idx import read_bytes

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = fm.STEMS
VAL_INDEX_SHA256 = "a0e6ade04f956de0"  # first 16 hex digits; see test_real_splits_...


# --- fixtures: an isolated machine and a tiny fake dataset --------------------------------

@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No $D2LCORE_DATA, an empty cache and home, no Debian package, and a mirror that does not
    exist, so a test only sees the copies it makes and can never reach the network."""
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian-package")
    monkeypatch.setattr(fm, "MIRROR", (tmp_path / "no-mirror").as_uri())
    return tmp_path


class Fake:
    """Four tiny IDX files standing in for FashionMNIST, with their checksums installed in
    ``fm.SHA256`` and a file:// mirror serving them gzipped."""

    def __init__(self, tmp_path, monkeypatch):
        g = torch.Generator().manual_seed(0)
        self.tensors = {
            TRAIN_IMAGES: torch.randint(0, 256, (12, 5, 4), generator=g, dtype=torch.uint8),
            TRAIN_LABELS: torch.randint(0, 10, (12,), generator=g, dtype=torch.uint8),
            TEST_IMAGES: torch.randint(0, 256, (6, 5, 4), generator=g, dtype=torch.uint8),
            TEST_LABELS: torch.randint(0, 10, (6,), generator=g, dtype=torch.uint8),
        }
        self.mirror_dir = self.write(tmp_path / "mirror")
        self.mirror = self.mirror_dir.as_uri()
        sums = {stem: hashlib.sha256(read_bytes(self.mirror_dir / f"{stem}.gz")).hexdigest() for stem in fm.STEMS}
        monkeypatch.setattr(fm, "SHA256", sums)

    def write(self, folder: Path, gz: bool = True, stems=fm.STEMS) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for stem in stems:
            write_idx(folder / (stem + (".gz" if gz else "")), self.tensors[stem])
        return folder

    def assert_loaded(self, data: FashionMNIST):
        assert torch.equal(data.train_images, self.tensors[TRAIN_IMAGES])
        assert torch.equal(data.test_images, self.tensors[TEST_IMAGES])
        assert torch.equal(data.train_labels, self.tensors[TRAIN_LABELS].long())
        assert data.train_labels.dtype == data.test_labels.dtype == torch.int64


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return Fake(tmp_path, monkeypatch)


def cache(tmp_path) -> Path:
    return tmp_path / "xdg-cache" / "d2lcore" / "fashion-mnist"


def is_valid(path: Path, stem: str) -> bool:
    return hashlib.sha256(read_bytes(path)).hexdigest() == fm.SHA256[stem]


# --- the IDX format -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["x-idx", "x-idx.gz"])
@pytest.mark.parametrize("tensor", [
    torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4),
    torch.tensor([-70000, 0, 70000], dtype=torch.int32),  # multi-byte values are big-endian on disk
    torch.linspace(-1, 1, 6, dtype=torch.float32).reshape(3, 2),
])
def test_idx_round_trip(tmp_path, name, tensor):
    path = write_idx(tmp_path / name, tensor)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = parse_idx(read_bytes(path), str(path))
    assert back.dtype == tensor.dtype and torch.equal(back, tensor)


def test_idx_header_layout(tmp_path):
    path = write_idx(tmp_path / "x", torch.zeros(2, 300, dtype=torch.uint8))
    assert path.read_bytes()[:12] == bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 1, 44])


def test_idx_bad_magic_names_the_file_and_what_was_expected():
    expected = r"labels\.bin: not an IDX file: the magic number is 50 4b 03 04, expected 00 00"
    with pytest.raises(IDXError, match=expected):
        parse_idx(b"PK\x03\x04 a zip file", "labels.bin")


def test_idx_truncated_or_padded_payload():
    payload = bytes([0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 4]) + bytes(12)
    assert parse_idx(payload).shape == (3, 4)
    with pytest.raises(IDXError, match=r"f: truncated: 20 bytes, but a uint8 array of shape \(3, 4\) needs 24"):
        parse_idx(payload[:-4], "f")
    with pytest.raises(IDXError, match="longer than its header says"):
        parse_idx(payload + b"\0", "f")
    with pytest.raises(IDXError, match="truncated IDX header"):
        parse_idx(payload[:6], "f")


def test_damaged_gzip_is_an_idx_error(tmp_path):
    path = write_idx(tmp_path / "x.gz", torch.arange(1000, dtype=torch.int32))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(IDXError, match=r"x\.gz: the gzip stream is damaged"):
        read_bytes(path)


def test_write_idx_rejects_types_idx_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store torch.int64"):
        write_idx(tmp_path / "x", torch.zeros(3, dtype=torch.int64))


# --- where FashionMNIST is found ----------------------------------------------------------

def test_places_are_tried_in_order(fake, isolated, monkeypatch):
    root, env, debian = (fake.write(isolated / name) for name in ("root", "env", "debian"))
    fake.write(cache(isolated), gz=False)  # plain, not gzipped, files work too
    monkeypatch.setattr(fm, "DEBIAN_DIR", debian)
    monkeypatch.setenv(fm.ENV_VAR, str(env))

    def source(**kwargs):
        data = FashionMNIST(mirror=fake.mirror, **kwargs)
        fake.assert_loaded(data)
        return data.source.how, data.source.folder

    assert source(root=root) == ("explicit", root)
    assert source() == ("env", env)
    monkeypatch.delenv(fm.ENV_VAR)
    assert source() == ("cache", cache(isolated))
    for path in cache(isolated).iterdir():
        path.unlink()
    assert source() == ("debian", debian)
    for path in debian.iterdir():
        path.unlink()
    assert source() == ("download", cache(isolated))
    assert source() == ("cache", cache(isolated))


def test_cache_defaults_to_home_without_xdg(fake, isolated, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    data = FashionMNIST(mirror=fake.mirror)
    assert data.source.folder == isolated / "home" / ".cache" / "d2lcore" / "fashion-mnist"
    assert sorted(p.name for p in data.source.folder.iterdir()) == sorted(s + ".gz" for s in fm.STEMS)


def test_download_is_verified_and_leaves_only_the_four_files(fake, isolated, capsys):
    data = FashionMNIST(mirror=fake.mirror)
    assert data.source.how == "download" and "downloaded from" in str(data.source)
    fake.assert_loaded(data)
    files = sorted(cache(isolated).iterdir())
    assert [p.name for p in files] == sorted(s + ".gz" for s in fm.STEMS)  # no temporary files
    assert all(is_valid(cache(isolated) / f"{stem}.gz", stem) for stem in fm.STEMS)
    assert "Downloading" in capsys.readouterr().err


def test_download_goes_into_a_named_folder_that_is_empty(fake, isolated):
    root = isolated / "new" / "folder"
    data = FashionMNIST(root=root, mirror=fake.mirror)
    assert data.source.how == "download" and data.source.folder == root
    assert all(is_valid(root / f"{stem}.gz", stem) for stem in fm.STEMS)
    assert not cache(isolated).exists()


def test_a_bad_download_is_rejected_and_leaves_no_partial_file(fake, isolated):
    mirror = isolated / "bad-mirror"
    fake.write(mirror)
    good = (mirror / f"{TEST_IMAGES}.gz").read_bytes()
    (mirror / f"{TEST_IMAGES}.gz").write_bytes(good[: len(good) // 2])  # cut short in transit
    with pytest.raises(DatasetNotFoundError, match=rf"{TEST_IMAGES}\.gz is not the expected one: .*gzip stream"):
        FashionMNIST(mirror=mirror.as_uri())
    # The two files before it were verified and kept; nothing else, in particular no .part file.
    assert sorted(p.name for p in cache(isolated).iterdir()) == [f"{TRAIN_IMAGES}.gz", f"{TRAIN_LABELS}.gz"]


def test_an_interrupted_download_leaves_no_partial_file(fake, isolated, monkeypatch):
    def cut_off(source, out, length):
        out.write(source.read(100))
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(fm.shutil, "copyfileobj", cut_off)
    with pytest.raises(DatasetNotFoundError, match="connection reset by peer"):
        FashionMNIST(mirror=fake.mirror)
    assert list(cache(isolated).iterdir()) == []


def test_offline_with_no_copy_names_the_three_ways(isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST()  # the isolated mirror does not exist: as good as offline
    message = str(info.value)
    for needed in ("neither in the user cache", "downloading it failed",
                   "apt-get install dataset-fashion-mnist", "$D2LCORE_DATA", "root=", "connect to the network"):
        assert needed in message
    assert not any(cache(isolated).glob("*"))  # no partial download left behind
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        FashionMNIST(download=False)


# --- damaged files --------------------------------------------------------------------------

def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "other data":  # a valid IDX file, but not the expected contents
        write_idx(path, torch.ones(12, 5, 4, dtype=torch.uint8))
    else:  # "not IDX"
        path.write_bytes(b"<html>404 Not Found</html>")


@pytest.mark.parametrize("how, reason", [("truncated", "gzip stream is damaged"),
                                         ("other data", "SHA-256"), ("not IDX", "not an IDX file")])
def test_damaged_cache_file_is_reported_removed_and_downloaded_again(fake, isolated, how, reason):
    fake.write(cache(isolated))
    assert FashionMNIST().source.how == "cache"
    target = cache(isolated) / f"{TRAIN_IMAGES}.gz"
    damage(target, how)
    with pytest.warns(DataWarning, match=rf"removing a damaged file from the cache: .*{TRAIN_IMAGES}.*{reason}"):
        data = FashionMNIST(mirror=fake.mirror)
    fake.assert_loaded(data)
    assert data.source.how == "download"
    assert is_valid(target, TRAIN_IMAGES)  # replaced by a verified copy


def test_damaged_cache_file_gives_way_to_the_debian_package(fake, isolated, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", fake.write(isolated / "debian"))
    fake.write(cache(isolated), gz=False)
    damage(cache(isolated) / TEST_LABELS, "truncated")
    with pytest.warns(DataWarning, match=TEST_LABELS):
        data = FashionMNIST()
    assert data.source.how == "debian"
    fake.assert_loaded(data)
    assert not (cache(isolated) / TEST_LABELS).exists()


def test_damaged_cache_file_is_never_used_even_offline(fake, isolated):
    fake.write(cache(isolated))
    damage(cache(isolated) / f"{TRAIN_LABELS}.gz", "other data")
    with pytest.warns(DataWarning, match=TRAIN_LABELS), pytest.raises(DatasetNotFoundError, match="apt-get install"):
        FashionMNIST()
    assert not (cache(isolated) / f"{TRAIN_LABELS}.gz").exists()


def test_wrong_files_in_an_explicit_root_are_an_error_that_says_which(fake, isolated):
    root = fake.write(isolated / "mine", stems=(TRAIN_IMAGES, TRAIN_LABELS, TEST_LABELS))
    damage(root / f"{TRAIN_IMAGES}.gz", "other data")
    damage(root / f"{TRAIN_LABELS}.gz", "not IDX")
    with pytest.raises(DataError) as info:
        FashionMNIST(root=root, mirror=fake.mirror)
    message = str(info.value)
    assert f"The folder {root} (from root=) holds files that are not the FashionMNIST files" in message
    assert f"{TRAIN_IMAGES}.gz: an IDX file of shape (12, 5, 4), but not {TRAIN_IMAGES}" in message
    assert f"{TRAIN_LABELS}.gz: not an IDX file" in message
    assert f"it lacks {TEST_IMAGES}" in message and TEST_LABELS not in message.replace(TEST_IMAGES, "")
    assert "Replace them" in message and "leave out root=" in message
    assert sorted(p.name for p in root.iterdir()) == sorted(
        f"{s}.gz" for s in (TRAIN_IMAGES, TRAIN_LABELS, TEST_LABELS))  # a folder you named is never modified


def test_missing_files_in_the_env_folder_are_an_error_when_they_cannot_be_downloaded(fake, isolated, monkeypatch):
    env = fake.write(isolated / "env", gz=False, stems=(TRAIN_IMAGES, TRAIN_LABELS))
    monkeypatch.setenv(fm.ENV_VAR, str(env))
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST()
    message = str(info.value)
    assert f"The folder {env} (from $D2LCORE_DATA) lacks {TEST_IMAGES}, {TEST_LABELS}" in message
    assert "apt-get install dataset-fashion-mnist" in message
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        FashionMNIST(download=False, mirror=fake.mirror)
    # With a mirror, the missing files are fetched into the named folder.
    assert FashionMNIST(mirror=fake.mirror).source.folder == env
    names = [TRAIN_IMAGES, TRAIN_LABELS, f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"]
    assert sorted(p.name for p in env.iterdir()) == sorted(names)


def test_second_load_reuses_the_parsed_tensors(fake, isolated, monkeypatch):
    root = fake.write(isolated / "root")
    first = FashionMNIST(root=root)

    def must_not_run(*args):
        raise AssertionError("the files were read again")

    monkeypatch.setattr(fm, "read_bytes", must_not_run)
    monkeypatch.setattr(fm, "parse_idx", must_not_run)
    second = FashionMNIST(root=root)
    assert second.train_images is first.train_images and second.test_labels is first.test_labels


# --- the FashionMNIST object --------------------------------------------------------------

def test_text_labels():
    assert FashionMNIST.text_labels(torch.tensor([0, 9, 3])) == ["t-shirt", "ankle boot", "dress"]
    assert FashionMNIST.text_labels([1, 7]) == ["trouser", "sneaker"]
    assert FashionMNIST.text_labels(8) == ["bag"]
    assert len(FashionMNIST.CLASSES) == 10
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.9; got \[10, -1\]"):
        FashionMNIST.text_labels([3, 10, -1])
    with pytest.raises(TypeError, match="integers"):
        FashionMNIST.text_labels(torch.tensor([1.0]))


def test_loader_and_repr_on_fake_data(fake, isolated):
    data = FashionMNIST(root=fake.write(isolated / "root"))
    X, y = next(iter(data.loader("test", batch_size=4)))
    assert X.shape == (4, 1, 5, 4) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(X[:, 0], fake.tensors[TEST_IMAGES][:4].float() / 255)
    assert next(iter(data.loader("test", batch_size=4, flatten=True)))[0].shape == (4, 20)
    assert data.loader("train", 5).shuffle and data.loader("train+val", 5).shuffle
    assert not data.loader("val", 5).shuffle and not data.loader("test", 5).shuffle
    with pytest.raises(ValueError, match=r"unknown split 'valid'; FashionMNIST has \('train', 'val', 'test', 'train\+val'\)"):
        data.loader("valid", batch_size=4)
    n_val = len(data.split("val")[1])
    assert repr(data).startswith(f"FashionMNIST(train: {12 - n_val} images, val: {n_val}, test: 6, 5x4 uint8, "
                                 f"10 classes; from ")
    assert f"{isolated / 'root'} (from root=)" in repr(data)


def test_splits_partition_the_training_file_class_by_class(fake, isolated):
    data = FashionMNIST(root=fake.write(isolated / "root"))
    index = fm.validation_indices(data.train_labels)
    assert torch.equal(index, index.sort().values) and len(index.unique()) == len(index)
    for c in range(10):  # each class gives a sixth of its images, rounded
        assert (data.train_labels[index] == c).sum() == round((data.train_labels == c).sum().item() / 6)
    train, val = data.split("train"), data.split("val")
    assert torch.equal(val[0], data.train_images[index]) and torch.equal(val[1], data.train_labels[index])
    everything = torch.cat([train[0], val[0]]).flatten(1)
    assert len(everything) == 12 and sorted(map(bytes, everything.numpy())) == sorted(
        map(bytes, data.train_images.flatten(1).numpy()))  # disjoint, and together the whole file
    assert data.split("train+val")[0] is data.train_images and data.split("test")[0] is data.test_images
    assert not torch.equal(fm.validation_indices(data.train_labels, seed=1), index) or len(index) < 2


@pytest.mark.parametrize("download", [True, False])
def test_a_mistyped_root_is_not_left_behind_when_the_data_cannot_be_had(isolated, download):
    typo = isolated / "no-such-folder" / "fashion"
    with pytest.raises(DatasetNotFoundError, match=f"The folder {typo} \\(from root=\\) lacks"):
        FashionMNIST(root=typo, download=download)  # the mirror does not exist: offline
    assert not typo.exists() and not typo.parent.exists()  # the disk is as it was
    a_file = isolated / "a-file"
    a_file.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        FashionMNIST(root=a_file)


def test_image_grid():
    images = torch.arange(3 * 2 * 2, dtype=torch.uint8).reshape(3, 2, 2) * 20
    grid = image_grid(images, ncols=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1) and grid.dtype == torch.float32
    assert torch.equal(grid[1:3, 4:6], images[1].float() / 255)  # second image: first row, second column
    assert torch.equal(grid[4:6, 1:3], images[2].float() / 255)
    assert grid[0].eq(1).all() and grid[4:6, 4:6].eq(1).all()  # padding and the empty cell are white
    assert torch.equal(image_grid(images.unsqueeze(1).float() / 255, ncols=2, pad=1), grid)
    assert image_grid(images, ncols=8, pad=0).shape == (2, 6)  # never wider than the number of images
    with pytest.raises(ValueError, match=r"non-empty \(N, H, W\) or \(N, 1, H, W\).*\(0, 2, 2\)"):
        image_grid(torch.zeros(0, 2, 2))
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 4, 4\)"):
        image_grid(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*rescale"):
        image_grid(torch.randn(2, 3, 3) * 5)
    with pytest.raises(ValueError, match="ncols"):
        image_grid(images, ncols=0)


# --- the real dataset (the Debian package) --------------------------------------------------

@pytest.fixture(scope="module")
def real():
    missing = [s for s in fm.STEMS if not (REAL_DIR / f"{s}.gz").is_file()]
    if missing:
        pytest.skip(f"the real FashionMNIST is not installed in {REAL_DIR} (lacks {', '.join(missing)}); "
                    f"install it with: sudo apt-get install dataset-fashion-mnist")
    return FashionMNIST(root=REAL_DIR, download=False)


def test_real_shapes_types_and_class_balance(real):
    assert real.train_images.shape == (60000, 28, 28) and real.train_images.dtype == torch.uint8
    assert real.test_images.shape == (10000, 28, 28) and real.test_images.dtype == torch.uint8
    assert real.train_labels.shape == (60000,) and real.train_labels.dtype == torch.int64
    assert real.test_labels.shape == (10000,) and real.test_labels.dtype == torch.int64
    assert real.train_labels.bincount().tolist() == [6000] * 10
    assert real.test_labels.bincount().tolist() == [1000] * 10
    assert real.train_images.max() == 255 and real.train_images.min() == 0


def test_real_checksums_match_the_published_ones(real):
    for stem in fm.STEMS:
        assert hashlib.sha256(gzip.decompress((REAL_DIR / f"{stem}.gz").read_bytes())).hexdigest() == fm.SHA256[stem]


def test_real_data_is_found_in_the_debian_package_by_default(real, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", REAL_DIR)
    data = FashionMNIST(download=False)
    assert data.source.how == "debian" and data.source.folder == REAL_DIR
    assert "Debian/Ubuntu package dataset-fashion-mnist" in repr(data)
    assert FashionMNIST(download=False).train_images is data.train_images  # parsed once per process


def test_real_splits_are_the_documented_50000_10000_10000(real):
    sizes = {name: len(real.split(name)[1]) for name in real.SPLITS}
    assert sizes == {"train": 50000, "val": 10000, "test": 10000, "train+val": 60000}
    assert real.split("val")[1].bincount().tolist() == [1000] * 10
    assert real.split("train")[1].bincount().tolist() == [5000] * 10
    # The rule is fixed: a change would silently move every number in the book. This digest of
    # the validation indices was taken when the rule was written (d2lcore 0.2.0).
    index = fm.validation_indices(real.train_labels)
    digest = hashlib.sha256(index.numpy().astype("<i8").tobytes()).hexdigest()
    assert digest.startswith(VAL_INDEX_SHA256), f"the validation split changed: {digest}"
    assert len(real.loader("train", batch_size=1000)) == 50


def test_real_loader_batches(real):
    test = real.loader("test", batch_size=256)
    assert len(test) == 40
    batches = list(test)
    X, y = batches[0]
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(X, real.test_images[:256].unsqueeze(1).float() / 255)
    assert torch.equal(y, real.test_labels[:256])
    assert batches[-1][0].shape == (10000 % 256, 1, 28, 28)
    assert min(b[0].min() for b in batches) == 0 and max(b[0].max() for b in batches) == 1
    X, _ = next(iter(real.loader("train", batch_size=64, flatten=True, device="cpu")))
    assert X.shape == (64, 784) and X.device.type == "cpu"


def test_real_shuffle_is_seeded(real):
    def labels(loader, batches=3):
        return torch.cat([y for (_, y), _ in zip(loader, range(batches))])

    same = labels(real.loader("train", 100, seed=1)), labels(real.loader("train", 100, seed=1))
    assert torch.equal(*same)
    assert not torch.equal(same[0], labels(real.loader("train", 100, seed=2)))
    loader = real.loader("train", 100, seed=1)
    assert not torch.equal(labels(loader), labels(loader))  # each epoch draws a new order


def test_real_shuffled_epoch_visits_every_image_once(real):
    # Fingerprint each image by an exact integer weighted sum of its pixels, then compare the
    # multisets: the fingerprints of one shuffled epoch must be those of the data, each once.
    weights = torch.randint(1, 2**20, (784,), generator=torch.Generator().manual_seed(0))

    def fingerprint(images_uint8):
        return (images_uint8.reshape(len(images_uint8), -1).long() * weights).sum(1)

    seen, labels = [], []
    for X, y in real.loader("test", batch_size=999, shuffle=True, flatten=True):
        seen.append(fingerprint((X * 255).round().to(torch.uint8)))
        labels.append(y)
    seen, labels = torch.cat(seen), torch.cat(labels)
    assert len(seen) == 10000
    order = torch.argsort(fingerprint(real.test_images))
    assert torch.equal(seen.sort().values, fingerprint(real.test_images)[order])
    assert not torch.equal(labels, real.test_labels)  # it was shuffled
    assert labels.bincount().tolist() == [1000] * 10


# --- synthetic regression -------------------------------------------------------------------

def test_synthetic_shapes_and_types():
    data = SyntheticRegression([2.0, -3.4], 4.2, n_train=30, n_val=20)
    assert data.X_train.shape == (30, 2) and data.y_train.shape == (30, 1)
    assert data.X_val.shape == (20, 2) and data.y_val.shape == (20, 1)
    assert {t.dtype for t in (data.X_train, data.y_train, data.X_val, data.y_val, data.w)} == {torch.float32}
    assert data.noise_family == "gaussian" and data.noise == 0.01 and data.b == 4.2
    assert "gaussian noise with scale 0.01" in repr(data)


def test_synthetic_is_reproducible_and_leaves_the_global_generator_alone():
    torch.manual_seed(1)
    a = SyntheticRegression([1.0, 2.0], 0.5, noise_family="student_t", seed=3)
    torch.manual_seed(2)
    state = torch.get_rng_state()
    b = SyntheticRegression([1.0, 2.0], 0.5, noise_family="student_t", seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_val, b.y_val)
    c = SyntheticRegression([1.0, 2.0], 0.5, noise_family="student_t", seed=4)
    assert not torch.equal(a.X_train, c.X_train)


def test_a_model_seeded_with_the_data_seed_draws_unrelated_numbers():
    data = SyntheticRegression([2.0, -3.4], 4.2, n_train=50, n_val=0, seed=0)
    torch.manual_seed(0)  # what a chapter does before building its model
    weights = torch.randn(50, 2)
    assert not torch.equal(weights, data.X_train)
    # Unrelated, not merely different: the correlation is what chance gives (50 * 2 pairs,
    # |r| < 5 / sqrt(100) fails by chance with probability below 1e-6).
    r = torch.corrcoef(torch.stack([weights.flatten(), data.X_train.flatten()]))[0, 1]
    assert abs(r) < 0.5


def _student_t3_quartile() -> float:
    """The 0.75 quantile of Student-t with 3 degrees of freedom, by bisection on its closed-form CDF."""
    def cdf(t):
        return 0.5 + (t / (math.sqrt(3) * (1 + t * t / 3)) + math.atan(t / math.sqrt(3))) / math.pi

    lo, hi = 0.0, 5.0
    for _ in range(60):
        lo, hi = ((lo + hi) / 2, hi) if cdf((lo + hi) / 2) < 0.75 else (lo, (lo + hi) / 2)
    return lo


@pytest.mark.parametrize("family", ["gaussian", "laplace", "student_t"])
def test_synthetic_noise_has_the_requested_scale(family):
    w, b, scale, n_half = torch.tensor([1.5, -2.0, 0.5]), 0.7, 0.3, 20000
    data = SyntheticRegression(w, b, noise=scale, n_train=n_half, n_val=n_half, noise_family=family, df=3.0)
    X, y = torch.cat([data.X_train, data.X_val]), torch.cat([data.y_train, data.y_val])
    noise = (y - X @ w.reshape(-1, 1) - b).flatten().double()
    n = len(noise)
    # Each estimator of the scale, with its standard error; we allow 5 standard errors.
    if family == "gaussian":  # sample std: SE ≈ σ / sqrt(2n)
        estimate, rel_se = noise.std().item(), 1 / math.sqrt(2 * n)
    elif family == "laplace":  # |noise| ~ Exponential with mean b and std b: SE = b / sqrt(n)
        estimate, rel_se = noise.abs().mean().item(), 1 / math.sqrt(n)
    else:  # heavy tails: the median of |noise| is scale * q, q the 0.75 quantile of t(3)
        q = _student_t3_quartile()
        density_at_q = 2 * torch.distributions.StudentT(3.0).log_prob(torch.tensor(q)).exp().item()
        estimate = noise.abs().median().item() / q
        rel_se = math.sqrt(0.25 / n) / density_at_q / q  # SE of a sample median: sqrt(p(1-p)/n) / f(m)
    assert abs(estimate / scale - 1) < 5 * rel_se, (family, estimate, scale)
    assert abs(noise.mean().item()) < 5 * noise.std().item() / math.sqrt(n)


def test_student_t_noise_has_heavier_tails_than_gaussian():
    kwargs = dict(w=[1.0], b=0.0, noise=1.0, n_train=20000, n_val=0)
    for family, lo, hi in (("gaussian", 0, 1e-3), ("student_t", 1e-2, 1)):
        data = SyntheticRegression(noise_family=family, **kwargs)
        noise = data.y_train - data.X_train
        # P(|eps| > 4 scale): 6e-5 for a standard normal, 0.028 for t(3).
        assert lo <= (noise.abs() > 4).double().mean().item() <= hi, family


def test_least_squares_recovers_w_and_b():
    w, b, noise, n = torch.tensor([2.0, -3.4]), 4.2, 0.01, 1000
    data = SyntheticRegression(w, b, noise=noise, n_train=n)
    design = torch.cat([data.X_train, torch.ones(n, 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, data.y_train.double()).solution.flatten()
    # With X ~ N(0, I), each coefficient's standard error is about noise / sqrt(n) = 3e-4.
    assert (solution[:2] - w.double()).abs().max() < 5 * noise / math.sqrt(n)
    assert abs(solution[2] - b) < 5 * noise / math.sqrt(n)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(noise_family="cauchy"), ValueError,
     "unknown noise_family 'cauchy'; choose one of gaussian, laplace, student_t"),
    (dict(noise=0.0), ValueError, r"noise \(the scale of the gaussian noise\) must be a finite number > 0"),
    (dict(noise=-1.0, noise_family="laplace"), ValueError, "scale of the laplace noise"),
    (dict(df=0.0, noise_family="student_t"), ValueError, r"df \(degrees of freedom"),
    (dict(n_train=0), ValueError, "n_train must be >= 1, got 0"),
    (dict(n_train=10.5), TypeError, "n_train must be an integer"),
    (dict(w=[[1.0, 2.0]]), ValueError, r"w must be a non-empty 1-D vector of weights, got shape \(1, 2\)"),
    (dict(w=[]), ValueError, r"1-D vector.*shape \(0,\)"),
])
def test_synthetic_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        SyntheticRegression(**{"w": [1.0], "b": 0.0, **kwargs})


def test_synthetic_loader():
    data = SyntheticRegression([1.0, 2.0], 0.0, n_train=10, n_val=6)
    train, val = data.loader("train", 4), data.loader("val", 4)
    assert train.shuffle and not val.shuffle and len(train) == 3 and len(val) == 2
    X, y = next(iter(val))
    assert torch.equal(X, data.X_val[:4]) and torch.equal(y, data.y_val[:4])
    with pytest.raises(ValueError, match=r"unknown split 'test'.*'val'"):
        data.loader("test", 4)


# --- Batches --------------------------------------------------------------------------------

def test_batches_validates_its_input():
    with pytest.raises(ValueError, match="at least one tensor"):
        Batches(batch_size=2)
    with pytest.raises(ValueError, match="empty"):
        Batches(torch.zeros(0, 3), batch_size=2)
    with pytest.raises(ValueError, match="tensor 0 has 5, tensor 1 has 4"):
        Batches(torch.zeros(5, 3), torch.zeros(4), batch_size=2)
    with pytest.raises(TypeError, match="not a torch.Tensor"):
        Batches(torch.zeros(5), [1, 2, 3, 4, 5], batch_size=2)
    for bad in (0, -1, 2.5, None):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            Batches(torch.zeros(5), batch_size=bad)


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batches_length_and_sizes(drop_last, sizes):
    batches = Batches(torch.arange(10), torch.arange(10) * 2, batch_size=4, drop_last=drop_last)
    assert len(batches) == len(sizes)
    got = list(batches)
    assert [len(x) for x, _ in got] == sizes
    assert all(torch.equal(y, 2 * x) for x, y in got)  # the tensors stay aligned


def test_batches_transform_applies_to_the_first_tensor_only():
    X, y = torch.arange(6, dtype=torch.uint8), torch.arange(6)
    (a, b), = Batches(X, y, batch_size=6, transform=lambda t: t.float() / 2)
    assert a.dtype == torch.float32 and torch.equal(a, X.float() / 2) and torch.equal(b, y)


def test_batches_device_and_shuffled_epochs():
    batches = Batches(torch.arange(50), batch_size=8, shuffle=True, seed=5, device="cpu")
    assert batches.device == torch.device("cpu")
    epochs = [torch.cat([b for b, in batches]) for _ in range(2)]
    for epoch in epochs:
        assert torch.equal(epoch.sort().values, torch.arange(50))  # a permutation: each example once
    assert not torch.equal(epochs[0], epochs[1])
    again = Batches(torch.arange(50), batch_size=8, shuffle=True, seed=5)
    assert torch.equal(torch.cat([b for b, in again]), epochs[0])
