"""`python -m d2lcore.data`, the data check that `make` runs during set-up."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def run(env_extra, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), **env_extra}
    return subprocess.run([sys.executable, "-m", "d2lcore.data"], capture_output=True, text=True, env=env, timeout=120)


def test_reports_where_the_data_was_found(tmp_path):
    if not DEBIAN.is_dir():
        pytest.skip("the Debian package dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    result = run({"D2LCORE_DATA": ""}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "FashionMNIST ready" in result.stdout and str(DEBIAN) in result.stdout


def test_a_folder_with_wrong_files_fails_with_a_message_and_no_download(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    result = run({"D2LCORE_DATA": str(folder)}, tmp_path)
    assert result.returncode == 1
    assert "FashionMNIST is not available" in result.stderr and "train-images-idx3-ubyte" in result.stderr
    assert (folder / "train-images-idx3-ubyte").read_bytes() == b"not an idx file"  # never modified
